"""What the service leaves at rest: no PDF of an ended transaction survives in the SQLite
files (database, WAL, shared memory), even after a crash; stored idempotent answers name
nobody once their transaction ended, and none outlives its retention or a crash."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import api_support
import httpx
import pytest
from api_support import (
    BY_ID,
    PEOPLE,
    KioskClient,
    LiveServer,
    MovableClock,
    Pki,
    Service,
    error_code,
    populated_with_kiosks,
)
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from certserver.api.deps import ABANDONED_AFTER, IN_PROGRESS
from certserver.app import DeploymentCheckError, create_app
from certserver.cli import main
from certserver.cli.init_cmd import initialise
from certserver.config import Settings
from certserver.db.models.transactions import IdempotencyRecord, IssuedDocument
from certserver.db.session import make_engine, make_session_factory, transaction, upgrade_to_head
from certserver.services.kiosks import KioskCredential, register_kiosk
from certserver.services.retention import IDEMPOTENCY_RETENTION, purge_idempotency_records
from kiosk.models import Document, DocumentRef
from kiosk.printer import Printer
from konbini_testkit.processkit import wait_until_healthy

pki, service = api_support.pki, api_support.service  # fixtures

WINDOW = 48  # bytes of a PDF looked for in the files; long enough to be that PDF's own


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServeProcess:
    """`certserver serve` in its own process, on a SQLite file in `folder`."""

    process: subprocess.Popen[bytes]
    url: str
    folder: Path
    credential: KioskCredential
    clock: MovableClock  # where the service's pretended clock started

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.folder / 'certserver.db'}"

    def add_kiosk(self, kiosk_id: str) -> KioskCredential:
        """Register another kiosk (beside the running service, as the CLI would)."""
        engine = make_engine(self.database_url)
        try:
            with transaction(make_session_factory(engine)) as session:
                return register_kiosk(session, kiosk_id, "store", dt.datetime.now(dt.UTC))
        finally:
            engine.dispose()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final checkpoint, the WAL stays as it is."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


@pytest.fixture
def served(pki: Pki, tmp_path: Path) -> Iterator[ServeProcess]:
    folder = tmp_path / "data"
    folder.mkdir(mode=0o700)
    url = f"sqlite:///{folder / 'certserver.db'}"
    upgrade_to_head(url)
    (credential,) = populated_with_kiosks(url, pki, ["K1"])
    port = _free_port()
    env = {**os.environ, "CERTSERVER_DATABASE_URL": url}
    # Inside the service hours whatever the hour of the test run.
    clock = MovableClock()
    pretend = clock().isoformat()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from certserver.cli import main; sys.exit(main())",
            "serve",
            "--data-dir",
            str(pki.data_dir),
            "--port",
            str(port),
            "--render-processes",
            "0",
            "--pretend-time",
            pretend,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    served = ServeProcess(process, f"http://127.0.0.1:{port}", folder, credential, clock)
    try:
        _wait_until_up(served)
        yield served
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        if process.stderr is not None:
            process.stderr.close()


def _wait_until_up(served: ServeProcess) -> None:
    process = served.process
    wait_until_healthy(
        served.url, process, poll=0.2, describe=lambda: process.stderr.read().decode() if process.stderr else ""
    )


def _fetched(kiosk: KioskClient, card: api_support.Card) -> tuple[str, list[bytes]]:
    """A paid visit whose PDFs the kiosk fetched, not yet ended: (transaction id, PDFs)."""
    tx_id, _ = kiosk.paid(card, copies=2)
    pdfs = []
    for doc in kiosk.documents(tx_id).json()["documents"]:
        fetched = kiosk.document(tx_id, doc["document_id"])
        assert fetched.status_code == 200, fetched.text
        pdfs.append(fetched.content)
    return tx_id, pdfs


def _end(kiosk: KioskClient, tx_id: str, *, print_it: bool) -> None:
    """Printed, or cancelled before printing (its documents withdrawn)."""
    ended = kiosk.printed(tx_id) if print_it else kiosk.cancel(tx_id)
    assert ended.json()["state"] == ("printed" if print_it else "cancelled"), ended.text


def _distinctive_windows(pdf: bytes) -> list[bytes]:
    """Windows spread over the PDF, leaving out runs that are mostly one byte (padding)."""
    windows = [pdf[i : i + WINDOW] for i in range(0, len(pdf) - WINDOW, 997)]
    return [w for w in windows if len(set(w)) > WINDOW // 3]


def carve(folder: Path, pdfs: list[bytes]) -> dict[str, int]:
    """For each file in `folder`, how many of the PDFs have a window found in it."""
    found = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits = sum(any(w in data for w in _distinctive_windows(pdf)) for pdf in pdfs)
        if hits:
            found[path.name] = hits
    return found


@pytest.mark.slow
def test_no_pdf_of_an_ended_transaction_survives_in_the_data_folder_after_a_crash(
    served: ServeProcess, pki: Pki
) -> None:
    """Many visits end printed or withdrawn, the server is killed (SIGKILL), and the
    database, its WAL and its shared-memory file are carved for the PDFs' bytes: none is
    there (secure_delete zeroes freed pages; a TRUNCATE checkpoint follows every erasure)."""
    cards = list(pki.cards.values())
    pdfs: list[bytes] = []
    with KioskClient(served.url, served.credential) as first, KioskClient(served.url, served.add_kiosk("K2")) as second:
        # Two kiosks overlap, so that each erasure's checkpoint copies the other kiosk's
        # pending PDFs into the database file before they too are erased.
        for n in range(12):
            first_tx, first_pdfs = _fetched(first, cards[(2 * n) % len(cards)])
            second_tx, second_pdfs = _fetched(second, cards[(2 * n + 1) % len(cards)])
            _end(first, first_tx, print_it=n % 3 != 2)
            _end(second, second_tx, print_it=n % 3 != 1)
            pdfs += first_pdfs + second_pdfs
    assert all(pdf.startswith(b"%PDF") for pdf in pdfs) and len(pdfs) == 48
    served.kill()
    files = {p.name for p in served.folder.iterdir()}
    assert "certserver.db" in files
    assert carve(served.folder, pdfs) == {}


# -- the data folder's modes --------------------------------------------------------------


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def _open_modes(folder: Path) -> dict[str, str]:
    """Every folder not 0700 and every file not 0600 under `folder` (itself included)."""
    found = {}
    for path in [folder, *folder.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode != (0o700 if path.is_dir() else 0o600):
            found[str(path.relative_to(folder))] = f"{mode:04o}"
    return found


def test_the_data_folder_is_0700_and_its_files_0600_whatever_the_umask(tmp_path: Path) -> None:
    """Under umask 000: init, then the service on the folder (database, WAL, shared memory,
    the writer lock), one transaction, and the kiosk printing into its output folder."""
    folder = tmp_path / "var"
    with _umask(0o000):
        initialise(Settings(data_dir=folder), demo=False, progress=lambda _line: None)
        settings = Settings(data_dir=folder)
        app = create_app(settings)
        with transaction(app.state.service.session_factory) as session:
            credential = register_kiosk(session, "K1", "store", dt.datetime.now(dt.UTC))
        with LiveServer(app) as server, KioskClient(server.url, credential) as kiosk:
            assert kiosk.start().status_code == 201
            assert {"certserver.db-wal", "certserver.db-shm"} <= {p.name for p in folder.iterdir()}
            assert _open_modes(folder) == {}
        pdf = b"%PDF-1.7 a printed certificate"
        ref = DocumentRef("doc-1", hashlib.sha256(pdf).hexdigest())
        Printer(folder / "printed").print_documents("tx-1", [ref], [Document(ref, "tx-1", pdf)])
    assert _open_modes(folder) == {}


def test_the_service_refuses_a_data_folder_open_to_other_users(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'private' / 'certserver.db'}"
    upgrade_to_head(url)
    shared = tmp_path / "shared"
    shutil.copytree(pki.data_dir, shared)
    shared.chmod(0o755)
    with pytest.raises(DeploymentCheckError, match="open to other users"):
        create_app(Settings(data_dir=shared, database_url=url))
    monkeypatch.setenv("CERTSERVER_DATABASE_URL", url)
    assert main(["serve", "--data-dir", str(shared), "--port", str(_free_port())]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "chmod 700" in err and "--allow-open-data-dir" in err, err
    # Tests may still run there when they say so.
    create_app(Settings(data_dir=shared, database_url=url, allow_open_data_dir=True)).state.engine.dispose()
    # The database's own folder counts too.
    (tmp_path / "private").chmod(0o750)
    with pytest.raises(DeploymentCheckError, match="open to other users"):
        create_app(Settings(data_dir=pki.data_dir, database_url=url))


# -- idempotency records ------------------------------------------------------------------


def _records(factory: sessionmaker[Session]) -> list[IdempotencyRecord]:
    with factory() as session:
        return list(session.scalars(select(IdempotencyRecord)))


def test_a_replay_after_the_transaction_ended_gets_transaction_ended_and_names_nobody(service: Service) -> None:
    """The stored menu and order answer name residents; once the transaction is printed
    their replays say only that it ended, and no stored answer holds a name."""
    card = service.pki.cards["toride-000"]
    names = [p.name for p in PEOPLE if p.household_id == BY_ID["toride-000"].household_id]
    with service.kiosk("K1") as kiosk:
        started = kiosk.start(headers={"Idempotency-Key": "start-1"}).json()
        tx_id = started["transaction_id"]
        authenticate = {"Idempotency-Key": "auth-1"}
        answer = kiosk.authenticate(tx_id, card, started["challenge"], headers=authenticate)
        assert answer.status_code == 200 and names[0] in answer.text
        ordered = kiosk.order(tx_id, whole_household=True, headers={"Idempotency-Key": "order-1"})
        assert ordered.status_code == 200 and names[1] in ordered.text
        assert (
            kiosk.pay(tx_id, ordered.json()["fee_total_yen"], headers={"Idempotency-Key": "pay-1"}).status_code == 200
        )
        assert any(n in r.body for r in _records(service.factory) for n in names)  # stored while it runs
        kiosk.download_all(tx_id)
        assert kiosk.printed(tx_id).json()["state"] == "printed"

        auth_replay = kiosk.authenticate(tx_id, card, started["challenge"], headers=authenticate)
        order_replay = kiosk.order(tx_id, whole_household=True, headers={"Idempotency-Key": "order-1"})
        start_replay = kiosk.start(headers={"Idempotency-Key": "start-1"})
    for replay in (auth_replay, order_replay, start_replay):
        assert replay.status_code == 409 and error_code(replay) == "transaction_ended", replay.text
        assert not any(n in replay.text for n in names)
    records = _records(service.factory)
    assert {r.key for r in records} == {"start-1", "auth-1", "order-1", "pay-1"}
    assert not any(n in r.body or n.replace("\u3000", "") in r.body for r in records for n in names)
    assert {r.transaction_id for r in records} == {tx_id}


def test_idempotency_records_are_deleted_after_their_retention(service: Service) -> None:
    with service.kiosk("K1") as kiosk:
        for n in range(3):
            assert kiosk.start(headers={"Idempotency-Key": f"start-{n}"}).status_code == 201
    assert len(_records(service.factory)) == 3
    assert purge_idempotency_records(service.factory, service.clock()) == 0
    service.clock.advance(IDEMPOTENCY_RETENTION.total_seconds() + 1)
    assert purge_idempotency_records(service.factory, service.clock()) == 3
    assert _records(service.factory) == []


def _order_in_the_background(served: ServeProcess, tx_id: str) -> threading.Thread:
    def order() -> None:
        with KioskClient(served.url, served.credential) as kiosk, contextlib.suppress(httpx.HTTPError):
            kiosk.order(tx_id, whole_household=True, copies=5, headers={"Idempotency-Key": "order-1"})

    thread = threading.Thread(target=order, daemon=True)
    thread.start()
    return thread


def _wait_for_placeholder(served: ServeProcess, key: str) -> None:
    engine = make_engine(served.database_url)
    try:
        factory = make_session_factory(engine)
        deadline = time.monotonic() + 30
        while not any(r.key == key and r.status_code == IN_PROGRESS for r in _records(factory)):
            assert time.monotonic() < deadline, "the order never started"
            time.sleep(0.01)
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_key_left_in_progress_by_a_crash_does_not_block_its_retries(served: ServeProcess, pki: Pki) -> None:
    """The service is killed (SIGKILL) while an order renders: its Idempotency-Key stays
    "in progress" in the database. After a restart a retry is refused as in progress only
    while the first try could still be running; later it runs: the first try never reached
    the transaction (the municipality's answer was lost with the process), so the retry
    orders once, and the transaction holds that one order. Once the transaction expired a
    retry gets transaction_ended."""
    with KioskClient(served.url, served.credential) as kiosk:
        tx_id, _ = kiosk.authenticated(pki.cards["toride-000"])
    thread = _order_in_the_background(served, tx_id)
    _wait_for_placeholder(served, "order-1")
    served.kill()
    thread.join(timeout=30)

    clock = served.clock
    clock.advance(5)
    app = create_app(Settings(data_dir=pki.data_dir, database_url=served.database_url), clock=clock)
    with LiveServer(app) as restarted, KioskClient(restarted.url, served.credential) as kiosk:

        def retry() -> httpx.Response:
            return kiosk.order(tx_id, whole_household=True, copies=5, headers={"Idempotency-Key": "order-1"})

        assert error_code(retry()) == "request_in_progress"  # the first try might still be rendering
        clock.advance(ABANDONED_AFTER.total_seconds())
        again = retry()
        assert again.status_code == 200, again.text
        assert len(again.json()["order"]["certificate_numbers"]) == 5
        assert retry().json() == again.json()  # a retry now gets that answer, not a second order
        with transaction(app.state.service.session_factory) as session:
            documents = session.scalars(select(IssuedDocument).where(IssuedDocument.transaction_id == tx_id)).all()
        assert len(documents) == 5
        clock.advance(Settings().transaction_ttl_seconds)
        app.state.service.transactions.expire_due(app.state.service.session_factory, clock())
        assert error_code(retry()) == "transaction_ended"


def test_a_reader_in_another_process_delays_an_erasure_briefly_and_the_next_one_truncates(service: Service) -> None:
    """A TRUNCATE checkpoint waits for readers of the WAL (a CLI command beside the service).
    It waits about a second, not the 30 s a writer would, and the next erasure catches up:
    nothing of either order is left in the WAL (later writes, such as the outcome reports
    sent after each ending, may grow it again, with nothing of the orders in it)."""
    if not service.settings.resolved_database_url.startswith("sqlite"):
        pytest.skip("the WAL checkpoint is SQLite's")
    database = Path(service.factory.kw["bind"].url.database)
    wal = database.with_name(database.name + "-wal")
    reader = sqlite3.connect(database)
    with service.kiosk("K1") as kiosk:
        first, first_order = kiosk.paid(service.pki.cards["toride-000"])
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM transactions").fetchone()  # holds a WAL snapshot
        began = time.monotonic()
        assert kiosk.cancel(first).status_code == 200
        assert time.monotonic() - began < 5
        assert wal.stat().st_size > 0  # the reader kept the checkpoint from cutting it
        reader.rollback()
        reader.close()
        second, second_order = kiosk.paid(service.pki.cards["toride-001"])
        assert kiosk.cancel(second).status_code == 200
    names = {*first_order["order"]["persons"], *second_order["order"]["persons"]}
    assert names and not [name for name in names if name.encode() in wal.read_bytes()]


_WRITE_ERASE_AND_DIE = """
import os, signal, sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("PRAGMA journal_mode=WAL")
connection.execute("PRAGMA secure_delete=ON")
connection.execute("PRAGMA wal_autocheckpoint=0")
secret = bytes.fromhex(sys.argv[2])
connection.execute("INSERT INTO idempotency_records VALUES ('K1', 'k', 'f', 200, ?, '2026-01-01', NULL)", (secret,))
connection.execute("UPDATE idempotency_records SET body = 'null'")
os.kill(os.getpid(), signal.SIGKILL)  # no close, no checkpoint: the WAL keeps both versions
"""


def test_a_wal_left_by_a_crash_between_an_erasure_and_its_checkpoint_is_cut_at_start(pki: Pki, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir(mode=0o700)
    database = folder / "certserver.db"
    url = f"sqlite:///{database}"
    upgrade_to_head(url)
    populated_with_kiosks(url, pki, ["K1"])
    secret = os.urandom(64)
    died = subprocess.run(
        [sys.executable, "-c", _WRITE_ERASE_AND_DIE, str(database), secret.hex()],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert died.returncode == -signal.SIGKILL, died.stderr
    assert secret in (folder / "certserver.db-wal").read_bytes()
    app = create_app(Settings(data_dir=pki.data_dir, database_url=url))
    try:
        assert (folder / "certserver.db-wal").stat().st_size == 0
        assert not any(secret in p.read_bytes() for p in folder.iterdir())
    finally:
        app.state.engine.dispose()
