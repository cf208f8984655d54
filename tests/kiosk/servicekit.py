"""The REAL issuing service for the kiosk's integration tests: `certserver init --demo`
data (made once per session, copied per test), `create_app` on a real uvicorn on
127.0.0.1 in a thread, SQLite in tmp_path, and a kiosk registered in its database.

The service's clock runs from a moment inside every demo municipality's opening hours
(weekday 10:00 JST or later), so the tests do not depend on the hour they run at.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from sqlalchemy import select

from certserver.app import create_app
from certserver.cli.init_cmd import initialise
from certserver.config import Settings
from certserver.db.session import make_engine, make_session_factory, transaction
from certserver.services.kiosks import register_kiosk
from certserver.services.rules.calendar import next_surely_open
from kiosk.democards import DemoCardEntry, read_index

KIOSK_ID = "TEST-KIOSK-01"


@dataclass
class Service:
    url: str
    data_dir: Path
    kiosk_id: str
    kiosk_secret: str
    cards: dict[str, DemoCardEntry]  # by resident id
    settings: Settings
    now: Callable[[], dt.datetime]  # the service's own clock (inside opening hours, not the wall clock)

    def card(self, resident_id: str) -> DemoCardEntry:
        return self.cards[resident_id]

    def query(self, statement):  # type: ignore[no-untyped-def]
        """Rows of a SQLAlchemy select on the service's database (for assertions)."""
        engine = make_engine(self.settings.resolved_database_url)
        try:
            with transaction(make_session_factory(engine)) as session:
                return list(session.execute(statement))
        finally:
            engine.dispose()

    def change(self, action: Callable) -> None:  # type: ignore[type-arg]
        """Run `action(session)` in one committed transaction on the service's database."""
        engine = make_engine(self.settings.resolved_database_url)
        try:
            with transaction(make_session_factory(engine)) as session:
                action(session)
        finally:
            engine.dispose()


def make_demo(folder: Path) -> dt.datetime:
    """`certserver init --demo` into `folder`; returns the moment it ran."""
    moment = dt.datetime.now(dt.UTC).replace(microsecond=0)
    initialise(Settings(data_dir=folder), demo=True, progress=lambda _line: None, now=moment)
    return moment


def open_moment(after: dt.datetime) -> dt.datetime:
    """The first weekday 10:00-16:00 JST moment after `after` (+1 minute), outside the
    year-end closure."""
    return next_surely_open(after + dt.timedelta(minutes=1)).astimezone(dt.UTC)


def running_clock(start: dt.datetime) -> Callable[[], dt.datetime]:
    began = time.monotonic()
    return lambda: start + dt.timedelta(seconds=time.monotonic() - began)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_cards(cards_dir: Path) -> dict[str, DemoCardEntry]:
    return {card.resident_id: card for card in read_index(cards_dir)}


@dataclass
class DemoTemplate:
    folder: Path
    created_at: dt.datetime


def start_service(template: DemoTemplate, folder: Path, shift: dt.timedelta = dt.timedelta(0)) -> Iterator[Service]:
    """Copy the demo data to `folder`, serve it on 127.0.0.1; stop on exit. `shift` moves
    the service's clock (years ahead: every card certificate has expired)."""
    shutil.copytree(template.folder, folder)
    settings = Settings(data_dir=folder, challenge_ttl_seconds=60, transaction_ttl_seconds=600)
    engine = make_engine(settings.resolved_database_url)
    with transaction(make_session_factory(engine)) as session:
        credential = register_kiosk(session, KIOSK_ID, "テスト店", dt.datetime.now(dt.UTC))
    engine.dispose()
    # From the wall clock, not from when the demo was made: a service clock behind the wall
    # clock would see anything a test stamps with "now" (a revocation) as still to come.
    clock = running_clock(open_moment(max(template.created_at, dt.datetime.now(dt.UTC)) + shift))
    app = create_app(settings, clock=clock)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="certserver", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the service did not start")
        time.sleep(0.02)
    try:
        yield Service(
            f"http://127.0.0.1:{port}",
            folder,
            credential.kiosk_id,
            credential.secret,
            load_cards(folder / "cards"),
            settings,
            clock,
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)


__all__ = ["DemoCardEntry", "DemoTemplate", "Service", "make_demo", "select", "start_service"]
