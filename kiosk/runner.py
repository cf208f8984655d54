"""Performs the flow's effects with the real devices and turns outcomes into events.

The one place where card, service, cash and printer errors become flow events, so the
Textual app (in worker threads), the headless driver and the load generator agree on what
every failure means.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cardreader.status import (
    CardError,
    CardRemovedError,
    NoCardError,
    PinLockedError,
    WrongPinError,
)
from kiosk import flow as f
from kiosk.card import CardReader
from kiosk.client import ServiceClient, ServiceError, ServiceUnreachableError
from kiosk.outcome_reports import OutcomeReports, new_report
from kiosk.payment import CashAcceptor
from kiosk.printer import DocumentMismatchError, OutOfPaperError, Printer, PrinterError
from kiosk.receipt import ReceiptLines, render_receipt

logger = logging.getLogger(__name__)

Emit = Callable[[f.Event], None]


@dataclass(frozen=True)
class Outcome:
    """One finished visit, as the operator panel lists it: no personal data."""

    at: datetime
    outcome: str
    transaction_id: str | None
    fee_yen: int


class EffectRunner:
    """Runs effects; thread-safe as long as each effect runs once."""

    def __init__(
        self,
        reader: CardReader,
        client: ServiceClient,
        acceptor: CashAcceptor,
        printer: Printer,
        *,
        reports: OutcomeReports | None = None,
        history: int = 20,
    ) -> None:
        self.reader = reader
        self.client = client
        self.acceptor = acceptor
        self.printer = printer
        self.reports = reports if reports is not None else OutcomeReports(None)
        self._printed_documents: dict[str, tuple[str, ...]] = {}  # by transaction, until reported
        self.outcomes: deque[Outcome] = deque(maxlen=history)
        self.printed_files: list[Path] = []  # of the last visit; the driver reports them
        self.receipt_file: Path | None = None  # the last visit's 利用明細
        self._lock = threading.Lock()

    def run(self, effect: f.Effect, emit: Emit) -> None:
        """Perform `effect`; results (if any) go to `emit`. Never raises for a device or
        service failure: those become events. The PIN is passed on, never logged."""
        handler = getattr(self, f"_{type(effect).__name__}")
        try:
            handler(effect, emit)
        except ServiceError as exc:
            logger.warning("service call for %s failed: %s", type(effect).__name__, exc.code)
            if effect.ticket:
                emit(f.ServiceFailed(effect.ticket, exc.code, exc.message_ja, exc.message_en, refused=exc.refused))
        except (CardRemovedError, NoCardError):
            emit(f.CardFailed(effect.ticket, removed=True))
        except CardError as exc:
            logger.warning("card operation failed: %s", type(exc).__name__)
            emit(f.CardFailed(effect.ticket))
        except Exception:
            # A bug must end the visit safely (money back, transaction cancelled), not
            # leave the screen waiting forever or kill the kiosk.
            logger.exception("performing %s failed", type(effect).__name__)
            if effect.ticket:
                emit(f.EffectCrashed(effect.ticket))

    # -- card ----------------------------------------------------------------------------
    def _ReadCard(self, effect: f.ReadCard, emit: Emit) -> None:
        info = self.reader.read()
        emit(f.CardRead(effect.ticket, info.certificate, info.tries_left))

    def _SignChallenge(self, effect: f.SignChallenge, emit: Emit) -> None:
        try:
            signed = self.reader.sign(effect.pin, effect.challenge)
        except WrongPinError as exc:
            emit(f.PinRejected(effect.ticket, exc.tries_left))
            return
        except PinLockedError:
            emit(f.PinLocked(effect.ticket))
            return
        emit(f.ChallengeSigned(effect.ticket, signed.signature))

    # -- service -------------------------------------------------------------------------
    def _StartTransaction(self, effect: f.StartTransaction, emit: Emit) -> None:
        # The last visits' outcomes first: starting would end (supersede) a transaction whose
        # printed paper the service has not heard of yet.
        pending = self.reports.deliver(self.client)
        if pending:
            raise ServiceUnreachableError(f"{pending} outcome report(s) not delivered yet")
        started = self.client.start_transaction()
        logger.info("transaction %s started", started.transaction_id)
        emit(f.TransactionStarted(effect.ticket, started.transaction_id, started.challenge))

    def _Authenticate(self, effect: f.Authenticate, emit: Emit) -> None:
        menu = self.client.authenticate(effect.transaction_id, effect.certificate, effect.signature)
        emit(f.Authenticated(effect.ticket, menu))

    def _PlaceOrder(self, effect: f.PlaceOrder, emit: Emit) -> None:
        try:
            accepted = self.client.order(effect.transaction_id, effect.order)
        except ServiceError as exc:
            if not exc.refused:
                raise
            logger.info("transaction %s: order refused (%s)", effect.transaction_id, exc.code)
            emit(f.OrderRefused(effect.ticket, exc.code, exc.message_ja, exc.message_en))
            return
        emit(f.OrderPrepared(effect.ticket, accepted))

    def _FetchDocuments(self, effect: f.FetchDocuments, emit: Emit) -> None:
        listed = self.client.list_documents(effect.transaction_id)
        documents = tuple(self.client.fetch_document(effect.transaction_id, ref) for ref in listed)
        emit(f.DocumentsFetched(effect.ticket, listed, documents))

    def _RecordPayment(self, effect: f.RecordPayment, emit: Emit) -> None:
        self.client.pay(effect.transaction_id, effect.fee_yen)
        emit(f.PaymentRecorded(effect.ticket))

    def _ReportPrinted(self, effect: f.ReportPrinted, emit: Emit) -> None:
        with self._lock:
            documents = self._printed_documents.pop(effect.transaction_id, ())
        self.reports.keep(new_report("printed", effect.transaction_id, documents))
        self.reports.deliver(self.client)

    def _CancelTransaction(self, effect: f.CancelTransaction, emit: Emit) -> None:
        self.reports.keep(new_report("cancel", effect.transaction_id))
        self.reports.deliver(self.client)
        logger.info("transaction %s cancelled (%s)", effect.transaction_id, effect.reason)

    # -- cash and paper ------------------------------------------------------------------
    def _ReturnCash(self, effect: f.ReturnCash, emit: Emit) -> None:
        self.acceptor.refund()

    def _CollectCash(self, effect: f.CollectCash, emit: Emit) -> None:
        self.acceptor.collect(effect.fee_yen)

    def _PrintDocuments(self, effect: f.PrintDocuments, emit: Emit) -> None:
        def progress(done: int, total: int) -> None:
            emit(f.PrintProgressed(effect.ticket, done, total))

        try:
            files = self.printer.print_documents(effect.transaction_id, effect.expected, effect.documents, progress)
        except OutOfPaperError:
            emit(f.PaperChanged(self.printer.sheets))
            emit(f.PrintFailed(effect.ticket, out_of_paper=True))
            return
        except DocumentMismatchError:
            logger.error("transaction %s: a document was not bound to it; nothing printed", effect.transaction_id)
            emit(f.PrintFailed(effect.ticket, out_of_paper=False))
            return
        except (PrinterError, OSError) as exc:
            logger.error("printer failed: %s", type(exc).__name__)
            emit(f.PrintFailed(effect.ticket, out_of_paper=False))
            return
        with self._lock:
            self.printed_files = files
            self._printed_documents[effect.transaction_id] = tuple(ref.document_id for ref in effect.expected)
        emit(f.PaperChanged(self.printer.sheets))
        emit(f.Printed(effect.ticket))

    def _PrintReceipt(self, effect: f.PrintReceipt, emit: Emit) -> None:
        receipt = ReceiptLines(
            effect.kind,
            effect.copies,
            effect.fee_yen,
            effect.paid_yen,
            effect.change_yen,
            effect.transaction_id,
            self.client.settings.kiosk_id,
            datetime.now(UTC),
        )
        try:
            path = self.printer.print_receipt(effect.transaction_id, render_receipt(receipt))
        except (PrinterError, OSError) as exc:
            # The certificates are out and paid for: a missing receipt is the operator's
            # matter (the screen showed the same figures), not the visit's failure.
            logger.warning("transaction %s: no receipt printed (%s)", effect.transaction_id, type(exc).__name__)
            return
        with self._lock:
            self.receipt_file = path

    def _VisitEnded(self, effect: f.VisitEnded, emit: Emit) -> None:
        self.outcomes.appendleft(Outcome(datetime.now(UTC), effect.outcome, effect.transaction_id, effect.fee_yen))
        logger.info("visit ended: %s (transaction %s)", effect.outcome, effect.transaction_id)
