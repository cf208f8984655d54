"""The service's own work per transaction, without HTTP: each step of a transaction run
in-process the way a route runs it (a session, the kiosk credential check, the service call,
the commit), one kiosk, one thread, the `certserver init --demo` data on SQLite.

For each step it prints the time per call, the SQL statements per call and how much of the
time the database driver itself took (cursor.execute, timed with SQLAlchemy's cursor
events); the rest is Python: SQLAlchemy's statement and ORM machinery, the rules, the audit
chain. Document rendering is STUBBED here, as in bench/service_bench.py. It answers what
the HTTP benchmark cannot: how much of a transaction's CPU is the service's own, and how
much of that the database.

    python bench/service_steps_bench.py [--transactions 300]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from service_bench import BenchCard, StubRenderer, _clock_offset, _prepare
from sqlalchemy import event

STEPS = ("start", "authenticate", "order", "payment", "documents", "fetch", "printed")


class Meter:
    """Wall time, statements and driver time per step."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.statements: dict[str, int] = defaultdict(int)
        self.driver_seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.step: str | None = None
        self._started = 0.0

    def attach(self, engine: Any) -> None:
        @event.listens_for(engine, "before_cursor_execute")
        def _before(*_args: object) -> None:
            self._started = time.perf_counter()

        @event.listens_for(engine, "after_cursor_execute")
        def _after(*_args: object) -> None:
            if self.step is not None:
                self.driver_seconds[self.step] += time.perf_counter() - self._started
                self.statements[self.step] += 1

    def clear(self) -> None:
        for table in (self.seconds, self.statements, self.driver_seconds, self.calls):
            table.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transactions", type=int, default=300)
    args = parser.parse_args()

    from certserver.app import create_app
    from certserver.config import Settings
    from certserver.services.kiosks import authenticate_kiosk
    from kioskapi.models import CertificateKind, Order

    data_dir = Path(tempfile.mkdtemp(prefix="steps-bench-")) / "data"
    cards, credentials = _prepare(data_dir, 1)
    kiosk_id, secret = next(iter(credentials.values())).removeprefix("Bearer ").split(":", 1)
    offset = _clock_offset()
    # The server's own wiring (engine, session factory, transaction service), never served.
    app = create_app(
        Settings(data_dir=data_dir), clock=lambda: dt.datetime.now(dt.UTC) + offset, renderer=StubRenderer()
    )
    engine = app.state.engine
    factory = app.state.service.session_factory
    service = app.state.service.transactions
    meter = Meter()
    meter.attach(engine)

    def step(name: str, call: Callable[[Any, Any, dt.datetime], Any], *, first: bool = True) -> Any:
        """One database turn of a step (a step that asks a municipality has two: `first` counts the call)."""
        meter.step = name
        started = time.perf_counter()
        with factory() as session:
            kiosk = authenticate_kiosk(session, kiosk_id, secret)
            result = call(session, kiosk, dt.datetime.now(dt.UTC) + offset)
            session.commit()
        meter.seconds[name] += time.perf_counter() - started
        meter.calls[name] += int(first)
        meter.step = None
        return result

    def municipality(name: str, call: Coroutine[Any, Any, Any]) -> Any:
        """The municipality's part of a step (the certificate server in this process)."""
        meter.step = name
        started = time.perf_counter()
        result = asyncio.run(call)
        meter.seconds[name] += time.perf_counter() - started
        meter.step = None
        return result

    def transaction(card: BenchCard) -> None:
        tx, nonce = step("start", service.start)
        tx_id = tx.id
        signature = card.sign(nonce)  # the card's work, outside any step
        holder = step(
            "authenticate", lambda s, k, now: service.begin_authentication(s, k, tx_id, card.der, signature, now)
        )
        menu = municipality("authenticate", service.holder_menu(holder, dt.datetime.now(dt.UTC) + offset))
        tx, menu = step(
            "authenticate",
            lambda s, k, now: service.finish_authentication(s, k, tx_id, holder, menu, now),
            first=False,
        )
        home = menu.municipalities[0]
        order = Order(municipality_code=home.code, role=home.role, kind=CertificateKind.JUMINHYO)
        call = step("order", lambda s, k, now: service.begin_order(s, k, tx_id, order, now))
        answer = municipality("order", service.municipal_order(call))
        outcome = step("order", lambda s, k, now: service.store_order(s, k, tx_id, call, answer, now), first=False)
        step("payment", lambda s, k, now: service.pay(s, k, tx_id, outcome.summary.fee_total_yen, now))
        ids = step("documents", lambda s, k, now: [d.id for d in service.documents(s, k, tx_id, now)])
        for document_id in ids:

            def fetch(s: Any, k: Any, now: dt.datetime, d: str = document_id) -> bytes:
                return service.document(s, k, tx_id, d, now).pdf

            step("fetch", fetch)
        step("printed", lambda s, k, now: service.printed(s, k, tx_id, now))

    for i in range(30):  # warm-up: caches, statement compilation
        transaction(cards[i % len(cards)])
    meter.clear()
    started = time.perf_counter()
    for i in range(args.transactions):
        transaction(cards[i % len(cards)])
    elapsed = time.perf_counter() - started
    engine.dispose()

    n = args.transactions
    print("NOTE: document rendering is STUBBED in this benchmark (fixed small PDF), as in service_bench.py.")
    print(
        f"{n} transactions in-process (no HTTP), one kiosk, SQLite (WAL), {elapsed / n * 1000:.2f} ms each "
        f"({n / elapsed:.0f}/s on one thread)"
    )
    print(f"{'step':14s} {'ms/call':>8s} {'SQL/call':>9s} {'driver ms':>10s} {'driver %':>9s}")
    for name in STEPS:
        calls = meter.calls[name] or 1
        seconds = meter.seconds[name]
        print(
            f"{name:14s} {seconds / calls * 1000:8.2f} {meter.statements[name] / calls:9.1f} "
            f"{meter.driver_seconds[name] / calls * 1000:10.3f} {100 * meter.driver_seconds[name] / seconds:8.0f}%"
        )
    total = sum(meter.seconds.values())
    driver = sum(meter.driver_seconds.values())
    print(
        f"{'transaction':14s} {total / n * 1000:8.2f} {sum(meter.statements.values()) / n:9.1f} "
        f"{driver / n * 1000:10.3f} {100 * driver / total:8.0f}%"
    )
    print(
        "driver = time inside the database driver's cursor.execute (commits not included); the rest is Python around it"
    )


if __name__ == "__main__":
    main()
