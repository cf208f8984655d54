"""The transaction state machine of one person's visit to a kiosk.

    started -> authenticated -> ordered -> paid -> released -> printed
         \\___________\\___________\\_________\\_________\\-> cancelled / expired / failed
                                                   released -> released_unconfirmed -> printed / cancelled

Rules that make the 2023-24 failures impossible (service.md §7):
- A transaction and each document are addressed only by an unguessable id
  (secrets.token_urlsafe(32)); every lookup is by that id AND the calling kiosk, and a
  document also by its transaction and the authenticated certificate serial. There is no
  "next", "latest" or time-based lookup anywhere (Yokohama, Kawasaki).
- A time-out or a cancellation ends the WHOLE transaction: every document is withdrawn and
  its PDF erased in the same database transaction as the state change.
- All state is in the database (no process memory), so several workers or servers on one
  database behave as one (Takamatsu).
- One open transaction per kiosk, enforced by a unique column: starting a new one ends the
  kiosk's previous open one as cancelled ("superseded"). A kiosk that starts again has lost
  or abandoned the old one (crash, power cut), and refusing would leave it stuck until the
  time-out; ending the old one whole is safe because its documents die with it.
- Paper in a person's hand is never made invalid by a lost message (2023-24 lesson, and
  what a kiosk's power cut does): a released transaction that ends before the kiosk reports
  its outcome (time-out, superseded) becomes `released_unconfirmed`; every document the
  kiosk fetched stays verifiable as issued, and the kiosk's late report (printed, or cancel:
  printing failed and the fee was returned) settles it. A paid transaction that ends
  unprinted records the refund (`refunded_yen`), so payments reconcile.
- A refusal's writes (the audit entry, a spent challenge, an aborted transaction) are
  committed: the API layer commits on refusals and rolls back only on unexpected errors, so
  every service method checks before it writes anything else.

The registries are the municipalities' (certserver.centre.municipalities): the centre asks
the card's municipality for the menu and for an order (checked, numbered, rendered and
signed there), between two database turns, so that no lock is held while a municipality
answers; what it keeps of an order is the PDFs until they print, their numbers and hashes.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import anyio.to_thread
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from certserver.centre.municipalities import MunicipalityLink, MunicipalityRefusal
from certserver.db.models.transactions import IssuedDocument, Kiosk, KioskTransaction, OutcomeReport
from certserver.db.session import rows_matched
from certserver.pki.validation import CardCertificateError, ValidatedCard, check_not_revoked
from certserver.refusals import CodedRefusal
from certserver.services import audit, retention
from certserver.services.authentication import (
    ChallengeError,
    as_utc,
    consume_challenge,
    issue_challenge,
)
from certserver.services.ordering import Menu, RuleViolation
from kioskapi.models import Order, OrderSummary
from lgwanapi.models import CardHolder, MenuCall, OrderAnswer, OrderCall, OutcomeCall, RenderedCopy

logger = logging.getLogger(__name__)


class TransactionState(StrEnum):
    STARTED = "started"
    AUTHENTICATED = "authenticated"
    ORDERED = "ordered"
    PAID = "paid"
    RELEASED = "released"  # the kiosk has been given the documents
    PRINTED = "printed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FAILED = "failed"
    # Released, then ended (time-out, superseded) before the kiosk reported what it printed:
    # its fetched documents stay issued until the kiosk's late report says otherwise.
    RELEASED_UNCONFIRMED = "released_unconfirmed"


OPEN_STATES = frozenset(
    {
        TransactionState.STARTED,
        TransactionState.AUTHENTICATED,
        TransactionState.ORDERED,
        TransactionState.PAID,
        TransactionState.RELEASED,
    }
)


class DocumentStatus(StrEnum):
    RENDERING = "rendering"  # rows of before the LGWAN link only (the centre now stores a document whole)
    PENDING = "pending"  # PDF stored, waiting for payment and printing
    ISSUED = "issued"  # printed; PDF erased, number + hashes kept for verification
    WITHDRAWN = "withdrawn"  # the transaction ended without printing; PDF erased


class TransactionError(CodedRefusal):
    """A request the transaction's state refuses; `code` is a stable API error code."""


# (session, cert_der, at) -> ValidatedCard; raises CardCertificateError (the CA is bound in).
ValidateCard = Callable[[Session, bytes, datetime], ValidatedCard]
# (session, serial) -> None; raises CertificateRevokedError (the JPKI record says revoked).
CheckRevoked = Callable[[Session, str], None]
# (cert_der, challenge, signature) -> None; raises CardCertificateError (signature_invalid).
VerifySignature = Callable[[bytes, bytes, bytes], None]


def new_id() -> str:
    """An unguessable id (256 random bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def _not_found() -> TransactionError:
    return TransactionError.of("transaction_not_found")


def _ended(tx: KioskTransaction) -> TransactionError:
    return TransactionError.of("transaction_ended")


def _wrong_state(tx: KioskTransaction, action: str) -> TransactionError:
    return TransactionError.of("invalid_state", state=tx.state, action=action)


@dataclass(frozen=True)
class OrderOutcome:
    transaction: KioskTransaction
    summary: OrderSummary


# Built once with bound parameters: every request runs several of these, and building a
# statement (coercions, cache key) cost more than running it on SQLite.
# A locked read must show the row as it is now: populate_existing, because an object the
# session already holds keeps its loaded values otherwise (the session does not expire them
# on commit), and an order that re-reads its transaction after rendering would not see that
# the sweep expired it meanwhile.
_TRANSACTION_FOR_UPDATE = (
    select(KioskTransaction)
    .where(KioskTransaction.id == bindparam("transaction_id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)
_OPEN_TRANSACTION_OF_KIOSK = (
    select(KioskTransaction)
    .where(KioskTransaction.open_for_kiosk == bindparam("kiosk_id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)
_DOCUMENTS_OF_TRANSACTION = (
    select(IssuedDocument)
    .where(
        IssuedDocument.transaction_id == bindparam("transaction_id"), IssuedDocument.kiosk_id == bindparam("kiosk_id")
    )
    .order_by(IssuedDocument.copy_index)
)
_ISSUE_PENDING = (
    update(IssuedDocument)
    .where(
        IssuedDocument.transaction_id == bindparam("of_transaction"), IssuedDocument.status == DocumentStatus.PENDING
    )
    .values(status=DocumentStatus.ISSUED, pdf=None, ended_at=bindparam("end_time"))
)
# A released transaction that ends unconfirmed: what the kiosk downloaded may be printed.
_ISSUE_FETCHED = (
    update(IssuedDocument)
    .where(
        IssuedDocument.transaction_id == bindparam("of_transaction"),
        IssuedDocument.status == DocumentStatus.PENDING,
        IssuedDocument.fetched_at.is_not(None),
    )
    .values(status=DocumentStatus.ISSUED, pdf=None, ended_at=bindparam("end_time"))
)
# The kiosk's late word that printing failed (and the fee went back): nothing stands issued.
_WITHDRAW_ISSUED = (
    update(IssuedDocument)
    .where(IssuedDocument.transaction_id == bindparam("of_transaction"), IssuedDocument.status == DocumentStatus.ISSUED)
    .values(status=DocumentStatus.WITHDRAWN, ended_at=bindparam("end_time"))
)
_WITHDRAW_UNISSUED = (
    update(IssuedDocument)
    .where(
        IssuedDocument.transaction_id == bindparam("of_transaction"),
        IssuedDocument.status.in_([DocumentStatus.RENDERING, DocumentStatus.PENDING]),
    )
    .values(status=DocumentStatus.WITHDRAWN, pdf=None, ended_at=bindparam("end_time"))
)


def _audit(
    session: Session,
    tx: KioskTransaction,
    action: str,
    outcome: str,
    now: datetime,
    detail: Mapping[str, object] | None = None,
) -> None:
    """One audit entry of a step of `tx`, under its kiosk and card serial."""
    audit.record(
        session,
        at=now,
        action=action,
        outcome=outcome,
        kiosk_id=tx.kiosk_id,
        transaction_id=tx.id,
        card_serial=tx.card_serial,
        detail=detail,
    )


class TransactionService:
    """Every step of a transaction. Methods take the request's session, the authenticated
    kiosk and the time; they raise TransactionError, ChallengeError, RuleViolation or the
    PKI's CardCertificateError for refusals."""

    def __init__(
        self,
        *,
        transaction_ttl_seconds: int,
        challenge_ttl_seconds: int,
        validate_card: ValidateCard,
        verify_signature: VerifySignature,
        municipalities: MunicipalityLink,
        check_revoked: CheckRevoked = check_not_revoked,
    ) -> None:
        self.transaction_ttl = timedelta(seconds=transaction_ttl_seconds)
        self.challenge_ttl_seconds = challenge_ttl_seconds
        self.validate_card = validate_card
        self.verify_signature = verify_signature
        self.municipalities = municipalities
        self.check_revoked = check_revoked
        self._delivering = False  # an outcome delivery round runs (on the event loop)
        self._deliver_again = False

    # -- start and lookup ---------------------------------------------------------------

    def start(self, session: Session, kiosk: Kiosk, now: datetime) -> tuple[KioskTransaction, bytes]:
        """Open a transaction for the kiosk (ending its previous open one) with a challenge."""
        previous = session.execute(_OPEN_TRANSACTION_OF_KIOSK, {"kiosk_id": kiosk.id}).scalar_one_or_none()
        if previous is not None:
            self._abort(session, previous, TransactionState.CANCELLED, "superseded", now)
            session.flush()  # free the kiosk's open slot before the new row takes it
        tx = KioskTransaction(
            id=new_id(),
            kiosk_id=kiosk.id,
            open_for_kiosk=kiosk.id,
            state=TransactionState.STARTED,
            created_at=now,
            expires_at=now + self.transaction_ttl,
        )
        session.add(tx)
        session.flush()
        challenge = issue_challenge(
            session, transaction_id=tx.id, kiosk_id=kiosk.id, now=now, ttl_seconds=self.challenge_ttl_seconds
        )
        audit.record(session, at=now, action="start", outcome="ok", kiosk_id=kiosk.id, transaction_id=tx.id)
        return tx, challenge.nonce

    def load(self, session: Session, kiosk: Kiosk, transaction_id: str, now: datetime) -> KioskTransaction:
        """The kiosk's transaction, locked; an overdue one is expired (whole) here.

        Raises TransactionError "transaction_not_found" (also for another kiosk's id: the
        caller learns nothing about it), "transaction_expired" or "transaction_ended".
        """
        tx = session.execute(_TRANSACTION_FOR_UPDATE, {"transaction_id": transaction_id}).scalar_one_or_none()
        if tx is None or tx.kiosk_id != kiosk.id:
            if tx is not None:
                # Someone asked for another kiosk's transaction: an anomaly worth an alert.
                logger.warning("kiosk %s asked for transaction %s of another kiosk", kiosk.id, transaction_id)
                audit.record(
                    session,
                    at=now,
                    action="access",
                    outcome="foreign_transaction",
                    kiosk_id=kiosk.id,
                    transaction_id=transaction_id,
                )
            raise _not_found()
        if tx.state in OPEN_STATES and now >= as_utc(tx.expires_at):
            self._abort(session, tx, TransactionState.EXPIRED, "timeout", now)
        if tx.state == TransactionState.EXPIRED:
            raise TransactionError.of("transaction_expired")
        if tx.state not in OPEN_STATES:
            raise _ended(tx)
        return tx

    # -- authentication -----------------------------------------------------------------

    def begin_authentication(
        self,
        session: Session,
        kiosk: Kiosk,
        transaction_id: str,
        certificate_der: bytes,
        signature: bytes,
        now: datetime,
    ) -> CardHolder:
        """The first half of authenticating: spend the challenge, check the card's signature
        over it and its certificate (with the JPKI record). The caller commits, asks the
        card's municipality for the menu (`holder_menu`) and ends with
        `finish_authentication`, so that no lock is held while the municipality answers.

        A failed attempt ends the transaction as failed (the kiosk starts a new one).
        Raises ChallengeError, CardCertificateError (signature_invalid, certificate_expired,
        certificate_revoked, certificate_unknown_ca ...) or TransactionError (state).
        """
        tx = self.load(session, kiosk, transaction_id, now)
        serial: str | None = None
        try:
            # The challenge first: it is spent by any attempt, even one refused by state.
            nonce = consume_challenge(session, transaction_id=tx.id, kiosk_id=kiosk.id, now=now)
            if tx.state != TransactionState.STARTED:
                raise _wrong_state(tx, "authenticate")
            # The signature first: it proves the card holds the key before any registry lookup.
            self.verify_signature(certificate_der, nonce, signature)
            card = self.validate_card(session, certificate_der, now)
            serial = card.serial
        except (ChallengeError, TransactionError, CardCertificateError) as exc:
            self._refuse_authentication(session, tx, kiosk, serial, exc, now)
            raise
        return CardHolder(card_serial=card.serial, applied_by=card.municipality_code)

    async def holder_menu(self, card: CardHolder, now: datetime) -> Menu | Exception:
        """The menu of the card's holder from the municipality that applied for the card
        (their 住所地), or the refusal it answered with (returned, for the caller to record)."""
        try:
            return await self.municipalities.menu(MenuCall(request_id=new_id(), card=card, at=now))
        except (RuleViolation, CardCertificateError, MunicipalityRefusal) as exc:
            return exc

    def finish_authentication(
        self,
        session: Session,
        kiosk: Kiosk,
        transaction_id: str,
        card: CardHolder,
        menu: Menu | Exception,
        now: datetime,
    ) -> tuple[KioskTransaction, Menu]:
        """Bind the transaction to the card, or end it as failed with the municipality's
        refusal. Raises RuleViolation (the holder may not use the service at all),
        CardCertificateError (certificate_not_registered), TransactionError (state,
        municipality_unavailable)."""
        tx = self.load(session, kiosk, transaction_id, now)
        if isinstance(menu, Exception):
            refusal = link_refusal(menu)
            self._refuse_authentication(session, tx, kiosk, card.card_serial, refusal, now)
            raise refusal
        if tx.state != TransactionState.STARTED:
            raise _wrong_state(tx, "authenticate")
        tx.state = TransactionState.AUTHENTICATED
        tx.card_serial = card.card_serial
        tx.card_applied_by = card.applied_by
        audit.record(
            session,
            at=now,
            action="authenticate",
            outcome="ok",
            kiosk_id=kiosk.id,
            transaction_id=tx.id,
            card_serial=card.card_serial,
        )
        return tx, menu

    def _refuse_authentication(
        self, session: Session, tx: KioskTransaction, kiosk: Kiosk, serial: str | None, exc: Exception, now: datetime
    ) -> None:
        audit.record(
            session,
            at=now,
            action="authenticate",
            outcome=getattr(exc, "code", "error"),
            kiosk_id=kiosk.id,
            transaction_id=tx.id,
            card_serial=serial,
        )
        if tx.state in OPEN_STATES:
            self._abort(session, tx, TransactionState.FAILED, f"authentication:{getattr(exc, 'code', 'error')}", now)

    def card_of(self, session: Session, kiosk: Kiosk, transaction_id: str, now: datetime) -> CardHolder:
        """The card an authenticated transaction is bound to, for its menu (`holder_menu`).
        Raises state errors."""
        tx = self.load(session, kiosk, transaction_id, now)
        if tx.state != TransactionState.AUTHENTICATED:
            raise _wrong_state(tx, "show the menu of")
        return _card_holder(tx)

    # -- ordering -----------------------------------------------------------------------

    def begin_order(
        self, session: Session, kiosk: Kiosk, transaction_id: str, order: Order, now: datetime
    ) -> OrderCall:
        """The call to the municipality for an order of an authenticated transaction; the
        caller sends it (`municipal_order`) outside any database turn and ends with
        `store_order`. Raises state errors."""
        tx = self.load(session, kiosk, transaction_id, now)
        if tx.state != TransactionState.AUTHENTICATED:
            raise _wrong_state(tx, "order in")
        return OrderCall(request_id=new_id(), card=_card_holder(tx), order=order, at=now)

    async def municipal_order(self, call: OrderCall) -> OrderAnswer | Exception:
        """The municipality's numbered, rendered and signed copies, or its refusal."""
        try:
            return await self.municipalities.order(call)
        except (RuleViolation, CardCertificateError, MunicipalityRefusal) as exc:
            return exc

    def store_order(
        self,
        session: Session,
        kiosk: Kiosk,
        transaction_id: str,
        call: OrderCall,
        answer: OrderAnswer | Exception,
        now: datetime,
    ) -> OrderOutcome:
        """Keep the copies of an order until they print, or record its refusal.

        Raises RuleViolation for an order the rules refuse (a stopped municipality too; the
        transaction stays authenticated); TransactionError "render_failed",
        "municipality_unavailable" or the document's own refusal (the transaction ends
        failed); "transaction_ended" (cancelled or expired while its certificates rendered:
        the municipality is told its numbers were withdrawn)."""
        try:
            tx = self.load(session, kiosk, transaction_id, now)
        except TransactionError:
            if isinstance(answer, OrderAnswer):
                _report(session, transaction_id, call, (), answer.summary.certificate_numbers, now)
            raise
        if isinstance(answer, RuleViolation):
            detail = {"municipality_code": call.order.municipality_code, "kind": str(call.order.kind)}
            _audit(session, tx, "order", answer.code, now, detail=detail)
            raise answer
        if isinstance(answer, Exception):
            refusal = link_refusal(answer)
            _audit(session, tx, "order", getattr(refusal, "code", "error"), now)
            if tx.state in OPEN_STATES:
                self._abort(session, tx, TransactionState.FAILED, getattr(refusal, "code", "error"), now)
            raise refusal
        if tx.state != TransactionState.AUTHENTICATED:
            # Another order of the same transaction was stored first.
            _report(session, tx.id, call, (), answer.summary.certificate_numbers, now)
            raise _wrong_state(tx, "order in")
        summary = answer.summary
        tx.lgwan_request_id = call.request_id
        documents = [
            IssuedDocument(
                id=new_id(),
                transaction_id=tx.id,
                kiosk_id=kiosk.id,
                card_serial=tx.card_serial,
                issuer_code=call.order.municipality_code,
                certificate_number=copy.certificate_number,
                kind=str(copy.kind),
                copy_index=index,
                status=DocumentStatus.PENDING,
                content_sha256=copy.content_sha256,
                pdf=copy.pdf,
                pdf_sha256=copy.pdf_sha256,
                created_at=now,
            )
            for index, copy in enumerate(_checked_copies(answer))
        ]
        session.add_all(documents)
        tx.state = TransactionState.ORDERED
        tx.fee_total_yen = summary.fee_total_yen
        tx.order_summary = summary.model_dump_json()
        _audit(
            session,
            tx,
            "order",
            "ok",
            now,
            detail={
                "municipality_code": call.order.municipality_code,
                "role": str(call.order.role),
                "kind": str(call.order.kind),
                "copies": summary.copies,
                "persons_count": len(summary.persons),
                "options": sorted(call.order.options),
                "fee_total_yen": summary.fee_total_yen,
                "certificate_numbers": summary.certificate_numbers,
                "content_sha256": [d.content_sha256 for d in documents],
                "lgwan_request_id": call.request_id,
            },
        )
        _audit(session, tx, "render", "ok", now, detail={"pdf_sha256": [d.pdf_sha256 for d in documents]})
        return OrderOutcome(tx, summary)

    # -- payment, release, printing -------------------------------------------------------

    def pay(
        self, session: Session, kiosk: Kiosk, transaction_id: str, amount_yen: int, now: datetime
    ) -> KioskTransaction:
        """Record that the kiosk took the fee. Raises TransactionError "amount_mismatch",
        "documents_not_ready" or state errors, CertificateRevokedError (the card was revoked
        since it authenticated: the transaction is ended whole)."""
        tx = self.load(session, kiosk, transaction_id, now)
        if tx.state != TransactionState.ORDERED:
            raise _wrong_state(tx, "pay for")
        self._refuse_revoked_card(session, tx, "payment", now)
        if amount_yen != tx.fee_total_yen:
            _audit(session, tx, "payment", "amount_mismatch", now, detail={"amount_yen": amount_yen})
            raise TransactionError.of("amount_mismatch", fee=tx.fee_total_yen)
        if any(d.status != DocumentStatus.PENDING for d in self._documents(session, tx)):
            raise TransactionError.of("documents_not_ready")
        tx.state = TransactionState.PAID
        tx.paid_yen = amount_yen
        _audit(session, tx, "payment", "ok", now, detail={"amount_yen": amount_yen})
        return tx

    def documents(self, session: Session, kiosk: Kiosk, transaction_id: str, now: datetime) -> list[IssuedDocument]:
        """The transaction's documents (after payment); the transaction becomes released.
        Raises state errors, CertificateRevokedError (see `pay`)."""
        tx = self._paid_transaction(session, kiosk, transaction_id, now, "list the documents of")
        self._refuse_revoked_card(session, tx, "release", now)
        docs = self._documents(session, tx)
        if tx.state == TransactionState.PAID:
            tx.state = TransactionState.RELEASED
            _audit(session, tx, "release", "ok", now, detail={"documents": len(docs)})
        return docs

    def document(
        self, session: Session, kiosk: Kiosk, transaction_id: str, document_id: str, now: datetime
    ) -> IssuedDocument:
        """One document with its PDF, only for this kiosk, this transaction, this card, after
        payment. Raises TransactionError "document_not_found" or state errors,
        CertificateRevokedError (see `pay`)."""
        tx = self._paid_transaction(session, kiosk, transaction_id, now, "fetch a document of")
        self._refuse_revoked_card(session, tx, "fetch_document", now)
        doc = session.get(IssuedDocument, document_id)
        if (
            doc is None
            or doc.transaction_id != tx.id
            or doc.kiosk_id != kiosk.id
            or doc.card_serial != tx.card_serial
            or doc.status != DocumentStatus.PENDING
            or doc.pdf is None
        ):
            raise TransactionError.of("document_not_found")
        if tx.state == TransactionState.PAID:
            tx.state = TransactionState.RELEASED
        if doc.fetched_at is None:
            doc.fetched_at = now
        _audit(
            session,
            tx,
            "fetch_document",
            "ok",
            now,
            detail={"certificate_number": doc.certificate_number, "pdf_sha256": doc.pdf_sha256},
        )
        return doc

    def printed(self, session: Session, kiosk: Kiosk, transaction_id: str, now: datetime) -> KioskTransaction:
        """The kiosk printed everything: documents become issued, PDFs are erased, it ends.

        Also the late report of a transaction that ended `released_unconfirmed` meanwhile.
        Raises TransactionError "documents_not_fetched" (the kiosk cannot have printed a
        document it never downloaded) or state errors.
        """
        tx = self._settling(session, kiosk, transaction_id, now, "finish")
        docs = self._documents(session, tx)
        if tx.state == TransactionState.PAID or any(d.fetched_at is None for d in docs):
            raise TransactionError.of("documents_not_fetched")
        late = tx.state == TransactionState.RELEASED_UNCONFIRMED
        session.execute(_ISSUE_PENDING, {"of_transaction": tx.id, "end_time": now})
        if late:
            tx.state, tx.end_reason = TransactionState.PRINTED, "printed_reported_late"
        else:
            self._end(tx, TransactionState.PRINTED, "printed", now)
        _audit(session, tx, "printed", "ok", now, detail={"late": late} if late else None)
        self._report_outcome(session, tx, now)
        return tx

    def cancel(self, session: Session, kiosk: Kiosk, transaction_id: str, now: datetime) -> KioskTransaction:
        """End the transaction whole: every document withdrawn and erased, the fee (if paid)
        recorded as refunded.

        After release this is the kiosk's word that printing failed and it gave the money
        back (the only reason its flow cancels then), also as a late report of a transaction
        that ended `released_unconfirmed`: its documents are withdrawn, so a half-printed
        sheet never verifies as a valid certificate.
        """
        tx = self._settling(session, kiosk, transaction_id, now, "cancel")
        reason = "cancelled_by_kiosk"
        if tx.state in (TransactionState.RELEASED, TransactionState.RELEASED_UNCONFIRMED):
            reason = "print_failed_refunded"
        if tx.state == TransactionState.RELEASED_UNCONFIRMED:
            session.execute(_WITHDRAW_ISSUED, {"of_transaction": tx.id, "end_time": now})
        self._abort(session, tx, TransactionState.CANCELLED, reason, now, nothing_printed=True)
        return tx

    def expire_due(self, factory: sessionmaker[Session], now: datetime, limit: int = 500) -> int:
        """End every overdue open transaction (one database transaction each, so that the
        lock order stays transaction row -> audit head). Returns how many were expired."""
        with factory() as session:
            due = list(
                session.scalars(
                    select(KioskTransaction.id)
                    .where(KioskTransaction.open_for_kiosk.is_not(None), KioskTransaction.expires_at <= now)
                    .limit(limit)
                )
            )
        expired = 0
        for tx_id in due:
            with factory() as session, session.begin():
                tx = session.execute(
                    select(KioskTransaction).where(KioskTransaction.id == tx_id).with_for_update()
                ).scalar_one()
                if tx.state in OPEN_STATES and now >= as_utc(tx.expires_at):
                    self._abort(session, tx, TransactionState.EXPIRED, "timeout", now)
                    expired += 1
        return expired

    # -- outcomes for the municipalities ---------------------------------------------------

    def _report_outcome(self, session: Session, tx: KioskTransaction, now: datetime) -> None:
        """Queue the outcome of the transaction's order for its municipality (in this
        database transaction: the report is kept exactly when the ending is)."""
        if tx.lgwan_request_id is None:
            return
        # The statuses as the database has them now: the statements that ended the documents
        # bypass the objects this session may hold.
        documents = session.execute(_DOCUMENT_STATUSES, {"transaction_id": tx.id}).all()
        issued = [number for _, number, status in documents if status == DocumentStatus.ISSUED]
        withdrawn = [number for _, number, status in documents if status == DocumentStatus.WITHDRAWN]
        if documents and (issued or withdrawn):
            session.add(
                OutcomeReport(
                    transaction_id=tx.id,
                    municipality_code=documents[0][0],
                    order_request_id=tx.lgwan_request_id,
                    issued=" ".join(issued),
                    withdrawn=" ".join(withdrawn),
                    created_at=now,
                    attempts=0,
                )
            )

    async def deliver_outcomes(self, factory: sessionmaker[Session], now: datetime, limit: int = 100) -> int:
        """Send the queued outcome reports, oldest first; one the municipality did not take
        stays queued for the next round. One round runs at a time in this process: a call
        while one runs asks it to go round once more (so that many endings at once do not
        send the same reports many times). Returns how many this call delivered."""
        if self._delivering:
            self._deliver_again = True
            return 0
        self._delivering = True
        try:
            delivered = 0
            self._deliver_again = True
            while self._deliver_again:
                self._deliver_again = False
                delivered += await self._deliver_round(factory, now, limit)
            return delivered
        finally:
            self._delivering = False

    async def _deliver_round(self, factory: sessionmaker[Session], now: datetime, limit: int) -> int:
        due = await anyio.to_thread.run_sync(_due_reports, factory, limit)
        delivered = 0
        for report_id, code, call in due:
            try:
                await self.municipalities.outcome(code, call)
            except (MunicipalityRefusal, RuleViolation, CardCertificateError) as exc:
                logger.warning("outcome report %d for municipality %s not delivered (%s)", report_id, code, exc.code)
                await anyio.to_thread.run_sync(_mark_report, factory, report_id, None)
                continue
            await anyio.to_thread.run_sync(_mark_report, factory, report_id, now)
            delivered += 1
        return delivered

    # -- helpers --------------------------------------------------------------------------

    def _settling(
        self, session: Session, kiosk: Kiosk, transaction_id: str, now: datetime, action: str
    ) -> KioskTransaction:
        """The transaction for the kiosk's outcome report (printed, cancel): an open one, or
        one that ended `released_unconfirmed` and still waits for that report."""
        try:
            tx = self.load(session, kiosk, transaction_id, now)
        except TransactionError:
            # load() has just ended it if it was overdue; a report that arrives after the
            # time-out still settles it.
            ended = session.execute(_TRANSACTION_FOR_UPDATE, {"transaction_id": transaction_id}).scalar_one_or_none()
            if (
                ended is not None
                and ended.kiosk_id == kiosk.id
                and ended.state == TransactionState.RELEASED_UNCONFIRMED
            ):
                return ended
            raise
        if action == "finish" and tx.state not in (TransactionState.PAID, TransactionState.RELEASED):
            raise _wrong_state(tx, action)
        return tx

    def _refuse_revoked_card(self, session: Session, tx: KioskTransaction, action: str, now: datetime) -> None:
        """End the transaction whole (documents withdrawn) and raise CertificateRevokedError
        when its card was revoked after it authenticated: a card reported stolen during a
        visit must get no document, not even one already downloaded (the kiosk prints only
        once it has them all). A fee already paid is owed back: the audit entry says how much
        and `refunded_yen` records it (the kiosk returns the cash on any refusal)."""
        try:
            self.check_revoked(session, tx.card_serial or "")
        except CardCertificateError as exc:
            refund = {"refund_due_yen": tx.paid_yen} if tx.paid_yen else {}
            logger.warning("transaction %s: card %s refused at %s (%s)", tx.id, tx.card_serial, action, exc.code)
            _audit(session, tx, action, exc.code, now, detail=refund)
            self._abort(session, tx, TransactionState.FAILED, f"{action}:{exc.code}", now, nothing_printed=True)
            raise

    def _paid_transaction(
        self, session: Session, kiosk: Kiosk, transaction_id: str, now: datetime, action: str
    ) -> KioskTransaction:
        tx = self.load(session, kiosk, transaction_id, now)
        if tx.state not in (TransactionState.PAID, TransactionState.RELEASED):
            raise _wrong_state(tx, action)
        return tx

    @staticmethod
    def _documents(session: Session, tx: KioskTransaction) -> list[IssuedDocument]:
        return list(session.scalars(_DOCUMENTS_OF_TRANSACTION, {"transaction_id": tx.id, "kiosk_id": tx.kiosk_id}))

    @staticmethod
    def _end(tx: KioskTransaction, state: TransactionState, reason: str, now: datetime) -> None:
        tx.state = state
        tx.end_reason = reason
        tx.ended_at = now
        tx.open_for_kiosk = None
        tx.order_summary = None  # it names people; the record keeps numbers and hashes only
        retention.transaction_ended(tx)  # the idempotent answers, the WAL's copies of the PDFs

    def _abort(
        self,
        session: Session,
        tx: KioskTransaction,
        state: TransactionState,
        reason: str,
        now: datetime,
        *,
        nothing_printed: bool = False,
    ) -> None:
        """End the transaction whole: withdraw and erase every document not yet issued.

        A released transaction whose kiosk fetched documents and has not said what it did
        with them (a time-out, superseded: the kiosk crashed or lost the service) ends
        `released_unconfirmed` instead: the fetched documents may be on paper in a person's
        hand, so they become issued, and the operator settles it (or the kiosk's late report
        does). A paid transaction ending otherwise owes its fee back: the refund is recorded.
        """
        unconfirmed = (
            tx.state == TransactionState.RELEASED
            and not nothing_printed
            and any(d.fetched_at is not None for d in self._documents(session, tx))
        )
        if unconfirmed:
            session.execute(_ISSUE_FETCHED, {"of_transaction": tx.id, "end_time": now})
            state = TransactionState.RELEASED_UNCONFIRMED
            logger.warning(
                "transaction %s ended (%s) after its documents were released, before the kiosk "
                "reported printing: released_unconfirmed, the operator must settle it",
                tx.id,
                reason,
            )
        elif tx.paid_yen:
            tx.refunded_yen = tx.paid_yen
        result = session.execute(_WITHDRAW_UNISSUED, {"of_transaction": tx.id, "end_time": now})
        self._end(tx, state, reason, now)
        logger.info("transaction %s ended %s (%s)", tx.id, state, reason)
        detail: dict[str, Any] = {"reason": reason, "documents_withdrawn": rows_matched(result)}
        if tx.refunded_yen:
            detail["refunded_yen"] = tx.refunded_yen
        _audit(session, tx, "end", str(state), now, detail=detail)
        self._report_outcome(session, tx, now)


def _report(
    session: Session,
    transaction_id: str,
    call: OrderCall,
    issued: Sequence[str],
    withdrawn: Sequence[str],
    now: datetime,
) -> None:
    """Queue an outcome report of an order call (see TransactionService._report_outcome)."""
    session.add(
        OutcomeReport(
            transaction_id=transaction_id,
            municipality_code=call.order.municipality_code,
            order_request_id=call.request_id,
            issued=" ".join(issued),
            withdrawn=" ".join(withdrawn),
            created_at=now,
            attempts=0,
        )
    )


_DOCUMENT_STATUSES = (
    select(IssuedDocument.issuer_code, IssuedDocument.certificate_number, IssuedDocument.status)
    .where(IssuedDocument.transaction_id == bindparam("transaction_id"))
    .order_by(IssuedDocument.copy_index)
)
_DUE_REPORTS = (
    select(OutcomeReport).where(OutcomeReport.delivered_at.is_(None)).order_by(OutcomeReport.id).limit(bindparam("n"))
)


def _due_reports(factory: sessionmaker[Session], limit: int) -> list[tuple[int, str, OutcomeCall]]:
    with factory() as session:
        return [
            (
                r.id,
                r.municipality_code,
                OutcomeCall(
                    request_id=new_id(),
                    order_request_id=r.order_request_id,
                    issued=tuple(r.issued.split()),
                    withdrawn=tuple(r.withdrawn.split()),
                    at=r.created_at,
                ),
            )
            for r in session.scalars(_DUE_REPORTS, {"n": limit})
        ]


def _mark_report(factory: sessionmaker[Session], report_id: int, delivered_at: datetime | None) -> None:
    """Delivered (at `delivered_at`), or one more failed attempt (None)."""
    with factory() as session, session.begin():
        report = session.get(OutcomeReport, report_id)
        if report is None or report.delivered_at is not None:
            return
        if delivered_at is None:
            report.attempts += 1
        else:
            report.delivered_at = delivered_at


def _card_holder(tx: KioskTransaction) -> CardHolder:
    if tx.card_serial is None or tx.card_applied_by is None:  # pragma: no cover - set together at authentication
        raise RuntimeError(f"transaction {tx.id} is authenticated without its card")
    return CardHolder(card_serial=tx.card_serial, applied_by=tx.card_applied_by)


def link_refusal(exc: Exception) -> Exception:
    """A municipality's refusal as the kiosk gets it: a rule's or a card's as it is, the
    link's (no answer, a failed render, a document refused) as a TransactionError."""
    if isinstance(exc, MunicipalityRefusal):
        return TransactionError(exc.code, exc.message_ja, exc.message_en)
    return exc


def _checked_copies(answer: OrderAnswer) -> list[RenderedCopy]:
    """The answer's copies, each PDF matching its hash and one per number of the summary.
    Raises TransactionError municipality_unavailable (an answer that breaks the contract)."""
    copies = answer.copies
    numbers = [c.certificate_number for c in copies]
    if numbers != answer.summary.certificate_numbers or any(
        hashlib.sha256(c.pdf).hexdigest() != c.pdf_sha256 for c in copies
    ):
        logger.warning("a municipality's order answer does not match its own summary or hashes")
        raise TransactionError.of("municipality_unavailable")
    return copies


def certificate_status(session: Session, certificate_number: str) -> str | None:
    """What verification may say of a certificate number: "issued" (printed), "withdrawn"
    (its transaction ended unprinted), or None (unknown, or not issued yet)."""
    status = session.scalar(
        select(IssuedDocument.status).where(IssuedDocument.certificate_number == certificate_number).limit(1)
    )
    if status in (DocumentStatus.ISSUED, DocumentStatus.WITHDRAWN):
        return str(status)
    return None
