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

Rendering is CPU-bound and slow; it runs in a bounded pool outside any database
transaction (so a slow PDF never holds a lock): the order is placed and committed first with
its certificate numbers allocated (`place_order`), rendered (`render`), then stored if the
transaction is still open (`store_rendered`). The API awaits the render between two
database turns; `order` does the three in a row for callers that may wait in a thread.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from certserver.db.base import table_of
from certserver.db.models.transactions import (
    CertificateCounter,
    IssuedDocument,
    Kiosk,
    KioskTransaction,
)
from certserver.db.session import rows_matched
from certserver.documents.content import CertificateContent
from certserver.documents.errors import DocumentError
from certserver.pki.validation import CardCertificateError, ValidatedCard, check_not_revoked
from certserver.refusals import CodedRefusal
from certserver.services import audit, retention
from certserver.services.authentication import (
    ChallengeError,
    as_utc,
    consume_challenge,
    issue_challenge,
)
from certserver.services.card_holders import holder_of_card
from certserver.services.ordering import Menu, OrderRequest, RuleViolation, menu_for, prepare_order
from kioskapi.models import OrderSummary

logger = logging.getLogger(__name__)

RENDER_TIMEOUT_SECONDS = 120


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
    RENDERING = "rendering"  # number allocated, PDF not yet stored
    PENDING = "pending"  # PDF stored, waiting for payment and printing
    ISSUED = "issued"  # printed; PDF erased, number + hashes kept for verification
    WITHDRAWN = "withdrawn"  # the transaction ended without printing; PDF erased


class TransactionError(CodedRefusal):
    """A request the transaction's state refuses; `code` is a stable API error code."""


class Rendered(Protocol):
    # Read-only, so that frozen dataclasses (documents.service.RenderedDocument) qualify.
    @property
    def pdf(self) -> bytes: ...
    @property
    def sha256(self) -> str: ...


class Renderer(Protocol):
    def render(self, content: CertificateContent) -> Rendered: ...


# (session, cert_der, at) -> ValidatedCard; raises CardCertificateError (the CA is bound in).
ValidateCard = Callable[[Session, bytes, datetime], ValidatedCard]
# (cert_der, challenge, signature) -> None; raises CardCertificateError (signature_invalid).
VerifySignature = Callable[[bytes, bytes, bytes], None]


def _render_refusal(exc: BaseException) -> TransactionError:
    """The kiosk's answer to a failed render: the document area's own code when it refused
    the content (外字: gaiji_in_record), otherwise render_failed."""
    if isinstance(exc, DocumentError):
        return TransactionError(exc.code, exc.message_ja, exc.message_en)
    return TransactionError.of("render_failed")


def render_failure(exc: Exception) -> Exception:
    """A render's exception as `store_rendered` takes it; logged unless it is a refusal of
    the document itself (外字 ...)."""
    if not isinstance(exc, DocumentError):
        logger.exception("rendering failed", exc_info=exc)
    return exc


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


@dataclass(frozen=True)
class PlacedOrder:
    """An order numbered and committed, its documents still to render (the first half of
    `TransactionService.order`; `store_rendered` is the second)."""

    transaction_id: str
    contents: tuple[CertificateContent, ...]
    document_ids: tuple[str, ...]
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
# Only a document still rendering takes its PDF: a withdrawn one must stay empty.
_STORE_PDF = (
    update(IssuedDocument)
    .where(IssuedDocument.id == bindparam("document_id"), IssuedDocument.status == DocumentStatus.RENDERING)
    .values(pdf=bindparam("new_pdf"), pdf_sha256=bindparam("new_pdf_sha256"), status=DocumentStatus.PENDING)
    .execution_options(synchronize_session=False)
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
# Advancing the counter and reading where it stands is one statement, which also locks the
# row until commit (PostgreSQL); the row is created only the first time an issuer numbers.
_COUNTERS = table_of(CertificateCounter)
_ADVANCE_COUNTER = (
    update(_COUNTERS)
    .where(_COUNTERS.c.issuer_code == bindparam("of_issuer"))
    .values(last_number=_COUNTERS.c.last_number + bindparam("advance_by"))
    .returning(_COUNTERS.c.last_number)
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
        renderer: Renderer,
        render_pool: Executor,
    ) -> None:
        self.transaction_ttl = timedelta(seconds=transaction_ttl_seconds)
        self.challenge_ttl_seconds = challenge_ttl_seconds
        self.validate_card = validate_card
        self.verify_signature = verify_signature
        self.renderer = renderer
        self.render_pool = render_pool

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

    def authenticate(
        self,
        session: Session,
        kiosk: Kiosk,
        transaction_id: str,
        certificate_der: bytes,
        signature: bytes,
        now: datetime,
    ) -> tuple[KioskTransaction, Menu]:
        """Check the card's signature over the challenge and its certificate; on success the
        transaction is bound to the certificate's serial and the menu is returned.

        A failed attempt ends the transaction as failed (the kiosk starts a new one).
        Raises ChallengeError, CardCertificateError (signature_invalid, certificate_expired,
        certificate_revoked, certificate_unknown_ca ...), RuleViolation (the holder may not
        use the service at all) or TransactionError (state).
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
            # The municipality that applied for the card says whose it is ...
            resident_id = holder_of_card(session, card)
            # ... and the holder may be barred altogether (moved out, DV support measure ...).
            menu = menu_for(session, resident_id, now)
        except (ChallengeError, TransactionError, CardCertificateError, RuleViolation) as exc:
            audit.record(
                session,
                at=now,
                action="authenticate",
                outcome=exc.code,
                kiosk_id=kiosk.id,
                transaction_id=tx.id,
                card_serial=serial,
            )
            if tx.state in OPEN_STATES:
                self._abort(session, tx, TransactionState.FAILED, f"authentication:{exc.code}", now)
            raise
        tx.state = TransactionState.AUTHENTICATED
        tx.card_serial = card.serial
        tx.resident_id = resident_id
        audit.record(
            session,
            at=now,
            action="authenticate",
            outcome="ok",
            kiosk_id=kiosk.id,
            transaction_id=tx.id,
            card_serial=card.serial,
        )
        return tx, menu

    def menu(self, session: Session, kiosk: Kiosk, transaction_id: str, now: datetime) -> Menu:
        """The menu again (after a refused order, say). Raises state errors."""
        tx = self.load(session, kiosk, transaction_id, now)
        if tx.state != TransactionState.AUTHENTICATED or tx.resident_id is None:
            raise _wrong_state(tx, "show the menu of")
        return menu_for(session, tx.resident_id, now)

    # -- ordering -----------------------------------------------------------------------

    def order(
        self, session: Session, kiosk: Kiosk, transaction_id: str, request: OrderRequest, now: datetime
    ) -> OrderOutcome:
        """Prepare, number, render and store the documents of an order, waiting for the
        render in this thread: `place_order`, `render`, `store_rendered` in a row. (The API
        runs the three itself, so that no thread waits while certificates render.)

        Commits twice on the caller's session: once with the numbers allocated (so the
        render runs outside any lock), once with the PDFs. Raises RuleViolation for an order
        the rules refuse (a stopped municipality too; the transaction stays authenticated),
        TransactionError "render_failed" or state errors.
        """
        placed = self.place_order(session, kiosk, transaction_id, request, now)
        session.commit()
        return self.store_rendered(session, kiosk, placed, self._wait_for_render(placed), now)

    def place_order(
        self, session: Session, kiosk: Kiosk, transaction_id: str, request: OrderRequest, now: datetime
    ) -> PlacedOrder:
        """Check the order, number its documents and record them as rendering; the caller
        commits before rendering. Raises RuleViolation or state errors."""
        tx = self.load(session, kiosk, transaction_id, now)
        if tx.state != TransactionState.AUTHENTICATED or tx.resident_id is None or tx.card_serial is None:
            raise _wrong_state(tx, "order in")
        try:
            prepared = prepare_order(session, tx.resident_id, request, now)
        except RuleViolation as exc:
            _audit(
                session,
                tx,
                "order",
                exc.code,
                now,
                detail={"municipality_code": request.municipality_code, "kind": str(request.kind)},
            )
            raise
        issuer_code = prepared.content.issuer.code
        numbers = self._allocate_numbers(session, issuer_code, prepared.copies)
        contents = [
            dataclasses.replace(
                prepared.content, certificate_number=number, requester_serial=tx.card_serial, signed_at=now
            )
            for number in numbers
        ]
        documents = [
            IssuedDocument(
                id=new_id(),
                transaction_id=tx.id,
                kiosk_id=kiosk.id,
                card_serial=tx.card_serial,
                issuer_code=issuer_code,
                certificate_number=content.certificate_number,
                kind=str(content.kind),
                copy_index=index,
                status=DocumentStatus.RENDERING,
                content_sha256=content.content_hash().hex(),
                created_at=now,
            )
            for index, content in enumerate(contents)
        ]
        session.add_all(documents)
        summary = OrderSummary(
            municipality_code=request.municipality_code,
            issuer_name=prepared.content.issuer.name,
            role=request.role,
            kind=prepared.content.kind,
            title_ja=prepared.content.kind.title_ja,
            persons=list(prepared.content.subject_names()),
            copies=prepared.copies,
            fee_per_copy_yen=prepared.fee_per_copy_yen,
            fee_total_yen=prepared.total_fee_yen,
            certificate_numbers=numbers,
        )
        tx.state = TransactionState.ORDERED
        tx.fee_total_yen = prepared.total_fee_yen
        tx.order_summary = summary.model_dump_json()
        audit.record(
            session,
            at=now,
            action="order",
            outcome="ok",
            kiosk_id=kiosk.id,
            transaction_id=tx.id,
            card_serial=tx.card_serial,
            detail={
                "municipality_code": request.municipality_code,
                "role": str(request.role),
                "kind": str(prepared.content.kind),
                "copies": prepared.copies,
                "persons_count": len(summary.persons),
                "options": sorted(request.options),
                "fee_total_yen": prepared.total_fee_yen,
                "certificate_numbers": numbers,
                "content_sha256": [d.content_sha256 for d in documents],
            },
        )
        return PlacedOrder(tx.id, tuple(contents), tuple(d.id for d in documents), summary)

    def render(self, placed: PlacedOrder) -> list[concurrent.futures.Future[Rendered]]:
        """Start rendering the order's documents in the render pool."""
        return [self.render_pool.submit(self.renderer.render, content) for content in placed.contents]

    def store_rendered(
        self,
        session: Session,
        kiosk: Kiosk,
        placed: PlacedOrder,
        rendered: Sequence[Rendered] | BaseException,
        now: datetime,
    ) -> OrderOutcome:
        """Store the PDFs of a placed order, or end it as failed when rendering failed
        (`rendered` is the exception). Raises TransactionError "render_failed" or
        "transaction_ended" (cancelled or expired while its certificates rendered)."""
        tx = session.execute(_TRANSACTION_FOR_UPDATE, {"transaction_id": placed.transaction_id}).scalar_one()
        if isinstance(rendered, BaseException):
            refusal = _render_refusal(rendered)
            if tx.state in OPEN_STATES:
                self._abort(session, tx, TransactionState.FAILED, refusal.code, now)
            raise refusal
        if tx.state != TransactionState.ORDERED:
            # Cancelled or expired while rendering: its documents were withdrawn with it.
            raise _ended(tx)
        for doc_id, result in zip(placed.document_ids, rendered, strict=True):
            stored = session.execute(
                _STORE_PDF, {"document_id": doc_id, "new_pdf": result.pdf, "new_pdf_sha256": result.sha256}
            )
            if rows_matched(stored) != 1:  # pragma: no cover - the transaction row lock rules it out
                raise RuntimeError(f"document {doc_id} of an ordered transaction was no longer rendering")
        _audit(session, tx, "render", "ok", now, detail={"pdf_sha256": [r.sha256 for r in rendered]})
        return OrderOutcome(tx, placed.summary)

    def _wait_for_render(self, placed: PlacedOrder) -> list[Rendered] | BaseException:
        futures = self.render(placed)
        try:
            return [future.result(timeout=RENDER_TIMEOUT_SECONDS) for future in futures]
        except Exception as exc:  # noqa: BLE001 - any render failure ends the transaction, never half an order
            return render_failure(exc)

    def _allocate_numbers(self, session: Session, issuer_code: str, count: int) -> list[str]:
        """`count` fresh certificate numbers of the issuer (a locked per-issuer counter)."""
        connection = session.connection()
        last = connection.execute(
            _ADVANCE_COUNTER, {"of_issuer": issuer_code, "advance_by": count}
        ).scalar_one_or_none()
        if last is None:  # the issuer's first certificate: create its counter (a racing twin may too)
            dialect = session.get_bind().dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            connection.execute(
                insert(_COUNTERS)
                .values(issuer_code=issuer_code, last_number=0)
                .on_conflict_do_nothing(index_elements=["issuer_code"])
            )
            last = connection.execute(_ADVANCE_COUNTER, {"of_issuer": issuer_code, "advance_by": count}).scalar_one()
        first = last - count + 1
        return [f"{issuer_code}-{n:08d}" for n in range(first, first + count)]

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
            check_not_revoked(session, tx.card_serial or "")
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
        tx.resident_id = None
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


def certificate_status(session: Session, certificate_number: str) -> str | None:
    """What verification may say of a certificate number: "issued" (printed), "withdrawn"
    (its transaction ended unprinted), or None (unknown, or not issued yet)."""
    status = session.scalar(
        select(IssuedDocument.status).where(IssuedDocument.certificate_number == certificate_number).limit(1)
    )
    if status in (DocumentStatus.ISSUED, DocumentStatus.WITHDRAWN):
        return str(status)
    return None
