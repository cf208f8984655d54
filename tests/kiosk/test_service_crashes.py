"""The service is killed (SIGKILL) again and again while several kiosks serve people, and
restarted each time. Afterwards, whatever step each kill hit:

- every certificate a kiosk printed is `issued` on the service (it verifies as valid);
- every fee a kiosk kept belongs to a transaction the service calls printed, and every paid
  transaction the service holds is either printed or has its refund recorded;
- nothing is left `released_unconfirmed`: the kiosks' kept reports settled everything.

Real parts throughout: `certserver serve` in its own process on 127.0.0.1, its SQLite
database, the kiosks' flow, HTTP client, in-process virtual cards and printers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from servicekit import DemoTemplate, load_cards, open_moment
from sqlalchemy import select

from certserver.config import Settings
from certserver.db.models.transactions import IssuedDocument, KioskTransaction
from certserver.db.session import make_engine, make_session_factory, transaction
from certserver.services.kiosks import register_kiosk
from kiosk.card import VirtualCardReader
from kiosk.client import ClientSettings, ServiceClient
from kiosk.driver import Driver, VisitResult, VisitScript
from kiosk.flow import KioskFlow
from kiosk.outcome_reports import OutcomeReports
from kiosk.payment import CashAcceptor
from kiosk.printer import Printer
from kiosk.runner import EffectRunner
from konbini_testkit.processkit import wait_until_healthy

KIOSKS = 4
KILLS = 8
SEED = int(os.environ.get("KONBINI_CRASH_SEED", "20261206"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CrashingService:
    """`certserver serve` as a child process that the test kills and starts again. Its
    clock is pretended (inside service hours) and keeps running across restarts."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.data_dir = data_dir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log
        self._began = time.monotonic()
        self._start_moment = open_moment(dt.datetime.now(dt.UTC))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        pretend = self._start_moment + dt.timedelta(seconds=time.monotonic() - self._began)
        command = [
            str(Path(sys.executable).with_name("certserver")),
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            "--render-processes",
            "0",
            "--pretend-time",
            pretend.isoformat(),
        ]
        with self._log.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_until_healthy(self.url, self.process, describe=lambda: self._log.read_text(errors="replace")[-2000:])

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Kiosk:
    kiosk_id: str
    secret: str
    folder: Path
    results: list[VisitResult] = field(default_factory=list)
    printed_files: list[Path] = field(default_factory=list)

    def reports(self) -> OutcomeReports:
        return OutcomeReports(self.folder / "reports")


class WatchedPrinter(Printer):
    """A printer that says when paper starts moving: half of the kills aim at that moment,
    the most costly one (paid, documents downloaded, not yet reported)."""

    def __init__(self, folder: Path, printing: threading.Event) -> None:
        super().__init__(folder, sheets=10**6, seconds_per_page=0.1)
        self._printing = printing

    def print_documents(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self._printing.set()
        return super().print_documents(*args, **kwargs)


def _serve_people(
    kiosk: Kiosk,
    url: str,
    cards: list,
    stop: threading.Event,  # type: ignore[type-arg]
    printing: threading.Event,
) -> None:
    client = ServiceClient(ClientSettings(url, kiosk.kiosk_id, kiosk.secret, 10.0))
    printer = WatchedPrinter(kiosk.folder / "tray", printing)
    reports = kiosk.reports()
    try:
        for number in range(10_000):  # bounded; the stop event ends it far sooner
            if stop.is_set():
                return
            card = cards[number % len(cards)]
            runner = EffectRunner(VirtualCardReader(str(card.path)), client, CashAcceptor(), printer, reports=reports)
            result = Driver(KioskFlow(), runner).visit(VisitScript(pin=card.pin, certificate="juminhyo"))
            kiosk.results.append(result)
            kiosk.printed_files += [Path(p) for p in result.documents]
            if result.status != "issued":
                time.sleep(0.2)  # the service is down: the next person comes a moment later
    finally:
        client.close()


@pytest.fixture
def crashing_service(demo_template: DemoTemplate, tmp_path: Path):  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "service"
    shutil.copytree(demo_template.folder, data_dir)
    service = CrashingService(data_dir, tmp_path / "serve.log")
    yield service
    service.stop()


def test_no_printed_certificate_or_fee_is_lost_when_the_service_is_killed_mid_visit(
    crashing_service: CrashingService, tmp_path: Path
) -> None:
    service = crashing_service
    settings = Settings(data_dir=service.data_dir)
    engine = make_engine(settings.resolved_database_url)
    factory = make_session_factory(engine)
    kiosks = []
    with transaction(factory) as session:
        for index in range(KIOSKS):
            credential = register_kiosk(session, f"CRASH-{index:02d}", "テスト店", dt.datetime.now(dt.UTC))
            kiosks.append(Kiosk(credential.kiosk_id, credential.secret, tmp_path / f"kiosk-{index}"))
    cards = [c for c in load_cards(service.data_dir / "cards").values() if c.expected_issued]
    service.start()

    stop, printing = threading.Event(), threading.Event()
    threads = [
        threading.Thread(target=_serve_people, args=(k, service.url, cards[i::KIOSKS], stop, printing), daemon=True)
        for i, k in enumerate(kiosks)
    ]
    for thread in threads:
        thread.start()
    chance = random.Random(SEED)
    try:
        for kill in range(KILLS):
            if kill % 2:
                printing.clear()
                printing.wait(timeout=30)  # a kiosk has started printing
                time.sleep(chance.uniform(0.0, 0.1))
            else:
                time.sleep(chance.uniform(0.3, 2.5))  # lands on whatever step each kiosk is at
            service.kill()
            time.sleep(chance.uniform(0.0, 0.5))
            service.start()
        time.sleep(3)  # calm: the kiosks deliver what they kept
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a kiosk hung"

    # The kiosks' kept reports reach the service (as each would at its next start).
    for kiosk in kiosks:
        with ServiceClient(ClientSettings(service.url, kiosk.kiosk_id, kiosk.secret, 10.0)) as client:
            assert kiosk.reports().deliver(client) == 0, f"{kiosk.kiosk_id} could not deliver its reports"

    with transaction(factory) as session:
        docs_by_hash = {d.pdf_sha256: d for d in session.scalars(select(IssuedDocument))}
        txs = {
            t.id: t
            for t in session.scalars(
                select(KioskTransaction).where(KioskTransaction.kiosk_id.in_([k.kiosk_id for k in kiosks]))
            )
        }
    engine.dispose()

    issued = [r for k in kiosks for r in k.results if r.status == "issued"]
    failed = [r for k in kiosks for r in k.results if r.status != "issued"]
    printed_files = [p for k in kiosks for p in k.printed_files]
    assert issued and failed, "the kills should hit some visits and spare others"

    # Every printed certificate stands issued on the service.
    for path in printed_files:
        document = docs_by_hash.get(hashlib.sha256(path.read_bytes()).hexdigest())
        assert document is not None and document.status == "issued", (path.name, document and document.status)

    # Every fee a kiosk kept is a printed transaction's; every paid transaction is printed or refunded.
    for result in issued:
        tx = txs[result.transaction_id or ""]
        assert (tx.state, tx.paid_yen, tx.refunded_yen) == ("printed", result.fee, None), result
    for result in failed:
        if result.transaction_id in txs:
            assert txs[result.transaction_id].state != "printed", result
    paid = [t for t in txs.values() if t.paid_yen]
    for tx in paid:
        assert tx.state == "printed" or tx.refunded_yen == tx.paid_yen, (tx.state, tx.paid_yen, tx.refunded_yen)
    assert not [t for t in txs.values() if t.state == "released_unconfirmed"]
    assert sum(r.fee for r in issued) == sum(t.paid_yen or 0 for t in paid if t.state == "printed")

    print(
        f"\nservice crashes: {KILLS} SIGKILLs (seed {SEED}), {len(issued) + len(failed)} visits, "
        f"{len(issued)} issued, {len(failed)} ended early, {len(printed_files)} printed documents all issued, "
        f"{len(paid)} paid transactions: {sum(t.state == 'printed' for t in paid)} printed, "
        f"{sum(bool(t.refunded_yen) for t in paid)} refunded"
    )
