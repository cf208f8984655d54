"""What the service leaves in its data folder: no PDF of an ended transaction survives in
the SQLite files (database, WAL, shared memory), even after a crash."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import api_support
import httpx
import pytest
from api_support import KioskClient, MovableClock, Pki, populated_with_kiosks

from certserver.db.session import make_engine, make_session_factory, transaction, upgrade_to_head
from certserver.services.kiosks import KioskCredential, register_kiosk

pki = api_support.pki  # fixture

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

    def add_kiosk(self, kiosk_id: str) -> KioskCredential:
        """Register another kiosk (beside the running service, as the CLI would)."""
        engine = make_engine(f"sqlite:///{self.folder / 'certserver.db'}")
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
    pretend = MovableClock()().isoformat()
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; from certserver.cli import main; sys.exit(main())", "serve",
         "--data-dir", str(pki.data_dir), "--port", str(port), "--render-processes", "0", "--pretend-time", pretend],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    served = ServeProcess(process, f"http://127.0.0.1:{port}", folder, credential)
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
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{served.url}/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if served.process.poll() is not None:
            raise AssertionError(served.process.stderr.read().decode() if served.process.stderr else "exited")
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.2)


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
    windows = [pdf[i:i + WINDOW] for i in range(0, len(pdf) - WINDOW, 997)]
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
def test_no_pdf_of_an_ended_transaction_survives_in_the_data_folder_after_a_crash(served: ServeProcess,
                                                                              pki: Pki) -> None:
    """Many visits end printed or withdrawn, the server is killed (SIGKILL), and the
    database, its WAL and its shared-memory file are carved for the PDFs' bytes: none is
    there (secure_delete zeroes freed pages; a TRUNCATE checkpoint follows every erasure)."""
    cards = list(pki.cards.values())
    pdfs: list[bytes] = []
    with (KioskClient(served.url, served.credential) as first,
          KioskClient(served.url, served.add_kiosk("K2")) as second):
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
