"""The load generator: many simulated kiosks at once, each running the real flow and the
real client against the service, and a check of every printed document.

The check that matters (service.md §7, Yokohama and Kawasaki 2023): each PDF must name the
requester, and no other demo person. A document naming anyone else is a wrong-person
document; the count must be 0 under any load.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, Queue
from typing import TextIO

from kiosk.card import VirtualCardReader
from kiosk.client import ClientSettings, ServiceClient
from kiosk.config import KioskSettings
from kiosk.democards import DemoCardEntry, DemoIndexError, read_index
from kiosk.driver import Driver, VisitResult, VisitScript
from kiosk.flow import KioskFlow
from kiosk.junit import JunitCase
from kiosk.outcome_reports import OutcomeReports
from kiosk.payment import CashAcceptor
from kiosk.printer import Printer, make_private_folder
from kiosk.runner import EffectRunner


class LoadError(Exception):
    """Input the load generator cannot run with (one line for the user)."""


@dataclass
class LoadReport:
    transactions: int
    issued: int
    errors: int
    error_codes: dict[str, int]
    seconds: float
    latencies: list[float]
    documents_checked: int
    wrong_person_documents: int
    kiosks: int
    # Each visit in the order it ended: card file, seconds, result code ("issued" or the
    # error's), whether a document named someone else. For `--junit`.
    visits: list[tuple[str, float, str, bool]] = field(default_factory=list)

    def junit_cases(self) -> list[JunitCase]:
        """One JUnit test case per visit: it passes when it issued, to the right person."""
        cases = []
        for number, (card, seconds, code, wrong) in enumerate(self.visits, 1):
            failure = "a document named someone else" if wrong else (None if code == "issued" else code)
            cases.append(JunitCase(f"visit {number:05d} ({card})", "kiosk.load", seconds, failure))
        return cases

    @property
    def throughput(self) -> float:
        return self.transactions / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]

    def to_json(self) -> dict[str, object]:
        return {
            "kiosks": self.kiosks,
            "transactions": self.transactions,
            "issued": self.issued,
            "errors": self.errors,
            "error_codes": self.error_codes,
            "seconds": round(self.seconds, 3),
            "throughput_per_s": round(self.throughput, 2),
            "latency_s": {
                "p50": round(self.percentile(0.5), 3),
                "p90": round(self.percentile(0.9), 3),
                "p99": round(self.percentile(0.99), 3),
                "max": round(max(self.latencies, default=0.0), 3),
                "mean": round(statistics.fmean(self.latencies), 3) if self.latencies else 0.0,
            },
            "documents_checked": self.documents_checked,
            "wrong_person_documents": self.wrong_person_documents,
        }

    def summary(self) -> str:
        data = self.to_json()
        lat = data["latency_s"]
        assert isinstance(lat, dict)
        return "\n".join(
            [
                f"kiosks: {self.kiosks}, transactions: {self.transactions} (issued {self.issued}, errors {self.errors}"
                + (f": {self.error_codes}" if self.error_codes else "")
                + ")",
                f"time: {self.seconds:.1f} s, throughput: {self.throughput:.1f} transactions/s",
                f"latency per visit: p50 {lat['p50']} s, p90 {lat['p90']} s, p99 {lat['p99']} s, max {lat['max']} s",
                f"documents checked: {self.documents_checked}, wrong-person documents: {self.wrong_person_documents}",
            ]
        )


def read_credentials(path: Path) -> list[tuple[str, str]]:
    """(id, secret) pairs from lines `id:secret` or `KIOSK_CREDENTIAL=id:secret`.
    Raises LoadError."""
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except OSError as exc:
        raise LoadError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise LoadError(f"{path} is not UTF-8 text") from None
    pairs = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip().removeprefix("KIOSK_CREDENTIAL=")
        if not line or line.startswith("#"):
            continue
        kiosk_id, sep, secret = line.partition(":")
        if not sep or not kiosk_id or not secret:
            # The line's number, never its text: it may hold a secret.
            raise LoadError(f"{path}: line {number} is not id:secret")
        pairs.append((kiosk_id, secret))
    return pairs


def read_cards(folder: Path) -> list[DemoCardEntry]:
    """The demo cards expected to be issued. Raises LoadError."""
    try:
        cards = [card for card in read_index(folder) if card.expected_issued]
    except DemoIndexError as exc:
        raise LoadError(str(exc)) from None
    if not cards:
        raise LoadError(f"{folder} has no card expected to be issued")
    return cards


def _squash(text: str) -> str:
    return "".join(text.split()).replace("　", "")


def wrong_person(pdf_path: Path, requester: DemoCardEntry, everyone: list[DemoCardEntry]) -> bool:
    """True if the document does not name the requester, or names another demo person."""
    from pypdf import PdfReader

    text = _squash("".join(page.extract_text() or "" for page in PdfReader(pdf_path).pages))
    if _squash(requester.name) not in text:
        return True
    return any(_squash(other.name) in text for other in everyone if other.resident_id != requester.resident_id)


@contextmanager
def _output(out: Path | None) -> Iterator[Path]:
    if out is not None:
        make_private_folder(out)
        yield out
        return
    folder = Path(tempfile.mkdtemp(prefix="kiosk-load-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class Progress:
    """How far a load run is: a bar redrawn in place on a terminal, and plain lines at every
    tenth (and the end) otherwise, so a log file or CI output gets no carriage returns."""

    def __init__(self, stream: TextIO | None, total: int) -> None:
        self.stream, self.total, self.done = stream, total, 0
        self._tty = stream is not None and stream.isatty()
        self._lock = threading.Lock()

    def step(self) -> None:
        with self._lock:
            self.done += 1
            if self.stream is None:
                return
            last = self.done == self.total
            if self._tty and (last or self.done % max(1, self.total // 50) == 0):
                filled = int(30 * self.done / self.total)
                self.stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total}")
                self.stream.write("\n" if last else "")
            elif not self._tty and (last or self.done % max(1, self.total // 10) == 0):
                self.stream.write(f"kiosk load: {self.done}/{self.total} visits ({100 * self.done // self.total}%)\n")
            else:
                return
            self.stream.flush()


def run_load(
    settings: KioskSettings,
    *,
    credentials_file: Path,
    kiosks: int,
    transactions: int,
    cards_dir: Path,
    out: Path | None = None,
    timeout: float = 30.0,
    progress: TextIO | None = None,
) -> LoadReport:
    """Run `transactions` visits over `kiosks` concurrent kiosks. Raises LoadError."""
    if kiosks < 1 or transactions < 1:
        raise LoadError("--kiosks and --transactions must be at least 1")
    credentials = read_credentials(credentials_file)
    if len(credentials) < kiosks:
        raise LoadError(
            f"{kiosks} kiosks need {kiosks} credentials; {credentials_file} has {len(credentials)} "
            "(a kiosk has one open transaction at a time)"
        )
    cards = read_cards(cards_dir)
    jobs: Queue[int] = Queue()
    for number in range(transactions):
        jobs.put(number)
    lock = threading.Lock()
    results: list[tuple[VisitResult, float, DemoCardEntry]] = []
    bar = Progress(progress, transactions)

    def kiosk_worker(index: int, kiosk_id: str, secret: str, folder: Path) -> None:
        client = ServiceClient(ClientSettings(settings.server_url, kiosk_id, secret, timeout))
        printer = Printer(folder / kiosk_id, sheets=10**9)
        reports = OutcomeReports(folder / f"{kiosk_id}.reports")
        try:
            while True:
                try:
                    number = jobs.get_nowait()
                except Empty:
                    return
                card = cards[number % len(cards)]
                reader = VirtualCardReader(str(card.path))
                runner = EffectRunner(reader, client, CashAcceptor(), printer, reports=reports)
                driver = Driver(KioskFlow(), runner)
                began = time.monotonic()
                result = driver.visit(VisitScript(pin=card.pin, certificate="juminhyo"))
                elapsed = time.monotonic() - began
                with lock:
                    results.append((result, elapsed, card))
                bar.step()
        finally:
            client.close()

    with _output(out) as folder:
        began = time.monotonic()
        threads = [
            threading.Thread(target=kiosk_worker, args=(i, *credentials[i], folder), daemon=True) for i in range(kiosks)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.monotonic() - began
        checked = wrong = 0
        error_codes: dict[str, int] = {}
        visits = []
        for result, elapsed, card in results:
            if result.status != "issued":
                error_codes[result.error_code or "?"] = error_codes.get(result.error_code or "?", 0) + 1
            wrong_here = 0
            for document in result.documents:
                checked += 1
                wrong_here += wrong_person(Path(document), card, cards)
            wrong += wrong_here
            code = "issued" if result.status == "issued" else result.error_code or "?"
            visits.append((card.path.name, elapsed, code, wrong_here > 0))
    issued = sum(1 for r, _, _ in results if r.status == "issued")
    return LoadReport(
        len(results),
        issued,
        len(results) - issued,
        error_codes,
        seconds,
        [elapsed for _, elapsed, _ in results],
        checked,
        wrong,
        kiosks,
        visits,
    )
