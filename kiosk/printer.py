"""The simulated printer: checks that each document is this transaction's, then "prints"
it by writing the PDF to its output folder (the paper tray of this emulator).

The check (service.md §7, Yokohama 2023) is made here, at the last moment: a document is
printed only if the service said it belongs to this transaction, its id is one the order
listed, and its bytes hash to the SHA-256 the order listed. Nothing is ever printed as "the
next file". The printer keeps no other copy: the bytes live in memory until written.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from kiosk.models import Document, DocumentRef
from konbini_common.durable import write_atomic

logger = logging.getLogger(__name__)

DEFAULT_SHEETS = 500
# What a transaction id may be to name a printed file: one plain path component. The client
# already holds ids to the API's pattern; the file name is made here, so it is checked here.
_FILE_NAME_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class PrinterError(Exception):
    title_ja = "印刷できませんでした"
    title_en = "Printing failed"


class OutOfPaperError(PrinterError):
    title_ja = "用紙がありません"
    title_en = "The printer is out of paper"


class DocumentMismatchError(PrinterError):
    """A document not bound to this transaction: nothing of the job is printed."""

    title_ja = "この取引の証明書ではありません"
    title_en = "The document does not belong to this transaction"


def check_documents(transaction_id: str, expected: Sequence[DocumentRef], documents: Sequence[Document]) -> None:
    """Raises DocumentMismatchError unless `documents` are exactly the `expected` ones of
    `transaction_id`, each with the listed SHA-256."""
    wanted = {ref.document_id: ref for ref in expected}
    seen: set[str] = set()
    if len(documents) != len(expected):
        raise DocumentMismatchError("the number of documents differs from the order")
    for document in documents:
        ref = wanted.get(document.ref.document_id)
        if ref is None or document.ref.document_id in seen:
            raise DocumentMismatchError("a document the order did not list")
        if document.transaction_id != transaction_id:
            raise DocumentMismatchError("a document of another transaction")
        if hashlib.sha256(document.pdf).hexdigest() != ref.sha256.lower():
            raise DocumentMismatchError("a document whose content differs from the order")
        seen.add(ref.document_id)


def make_private_folder(folder: Path) -> None:
    """Create the output folder (and missing parents) mode 0700 whatever the umask: printed
    certificates name residents. An existing folder is left as it is. Raises OSError."""
    if folder.is_dir():
        return
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)


class Printer:
    """Writes each printed document as `<transaction>-<n>.pdf` (mode 0600) into `out_dir`
    (made 0700)."""

    def __init__(
        self, out_dir: str | os.PathLike[str], *, sheets: int = DEFAULT_SHEETS, seconds_per_page: float = 0.0
    ) -> None:
        self.out_dir = Path(out_dir)
        self._lock = threading.Lock()
        self._sheets = sheets
        self.seconds_per_page = seconds_per_page
        self.pages_printed = 0

    @property
    def sheets(self) -> int:
        with self._lock:
            return self._sheets

    def load_paper(self, sheets: int) -> None:
        """Set the paper level (the operator's refill or out-of-paper simulation)."""
        with self._lock:
            self._sheets = max(0, sheets)

    def print_receipt(self, transaction_id: str, pdf: bytes) -> Path:
        """Print the 利用明細 of a transaction (one sheet) as `<transaction>-receipt.pdf`.
        Raises DocumentMismatchError (an id that is no plain file name), OutOfPaperError,
        OSError."""
        if not _FILE_NAME_ID.fullmatch(transaction_id):
            raise DocumentMismatchError("a transaction id that is no plain file name")
        with self._lock:
            if self._sheets < 1:
                raise OutOfPaperError("no sheet left for the receipt")
            self._sheets -= 1
        make_private_folder(self.out_dir)
        path = self.out_dir / f"{transaction_id}-receipt.pdf"
        write_atomic(path, pdf)
        self.pages_printed += 1
        return path

    def print_documents(
        self,
        transaction_id: str,
        expected: Sequence[DocumentRef],
        documents: Sequence[Document],
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Path]:
        """Check, then print every page; return the written files. Raises
        DocumentMismatchError (nothing printed; also for a transaction id that is not a
        plain file name), OutOfPaperError (before the first page if
        the tray cannot hold the job, else when it runs out), OSError."""
        if not _FILE_NAME_ID.fullmatch(transaction_id):
            raise DocumentMismatchError("a transaction id that is no plain file name")
        check_documents(transaction_id, expected, documents)
        total = sum(d.ref.pages for d in documents)
        if self.sheets < total:
            raise OutOfPaperError(f"{total} pages needed, {self.sheets} sheets loaded")
        make_private_folder(self.out_dir)
        written: list[Path] = []
        done = 0
        for number, document in enumerate(documents, start=1):
            with self._lock:
                if self._sheets < document.ref.pages:
                    raise OutOfPaperError("the printer ran out of paper")
                self._sheets -= document.ref.pages
            path = self.out_dir / f"{transaction_id}-{number}.pdf"
            write_atomic(path, document.pdf)  # never half a certificate on the tray
            written.append(path)
            done += document.ref.pages
            self.pages_printed += document.ref.pages
            if self.seconds_per_page:
                threading.Event().wait(self.seconds_per_page * document.ref.pages)
            if progress is not None:
                progress(done, total)
        logger.info("printed %d document(s) of transaction %s", len(written), transaction_id)
        return written
