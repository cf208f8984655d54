"""What the J-LIS centre may ask of a municipality's certificate server: the menu of a
card's holder, and an order checked, numbered, rendered and signed.

The centre names a card only by its certificate serial and the municipality that applied
for it; this server's own record (`resident_cards`) says whose card it is, and every
personal fact stays here except the rendered certificates and the menu's names, which the
centre relays to the kiosk and erases (分散管理).

An order is placed (checked, numbered, recorded under its request id) and committed before
it renders, so that no database lock is held while a PDF renders; a repeated delivery of
the same call gets the stored answer, a delivery while the first still renders is told to
retry, a different call under a used request id is refused.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import anyio.to_thread
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from certserver.db.models.lgwan import LgwanOrder
from certserver.db.session import rows_matched
from certserver.documents.content import CertificateContent
from certserver.documents.errors import DocumentError
from certserver.municipal.numbering import allocate_numbers
from certserver.refusals import CodedRefusal
from certserver.services import audit
from certserver.services.card_holders import holder_of_serial
from certserver.services.ordering import Menu, OrderRequest, RuleViolation, menu_for, prepare_order
from kioskapi.models import Order, OrderSummary
from lgwanapi.models import MenuCall, OrderAnswer, OrderCall, OutcomeCall, RenderedCopy

logger = logging.getLogger(__name__)

RENDER_TIMEOUT_SECONDS = 120
# How long an order's answer (its PDFs) is kept for a repeated delivery when no outcome
# comes: far beyond any transaction's time-out at the centre.
ANSWER_RETENTION = timedelta(hours=2)


class LgwanRefusal(CodedRefusal):
    """A call this server refuses for what it is (not for the rules): `code` is stable."""


class Rendered(Protocol):
    # Read-only, so that frozen dataclasses (documents.service.RenderedDocument) qualify.
    @property
    def pdf(self) -> bytes: ...
    @property
    def sha256(self) -> str: ...


class Renderer(Protocol):
    def render(self, content: CertificateContent) -> Rendered: ...


@dataclass(frozen=True)
class _Placed:
    contents: tuple[CertificateContent, ...]
    summary: OrderSummary


def order_request(order: Order) -> OrderRequest:
    """The kiosk's order as the rules check it."""
    return OrderRequest(
        municipality_code=order.municipality_code,
        role=order.role,
        kind=order.kind,
        person_ids=tuple(order.person_ids),
        whole_household=order.whole_household,
        options=frozenset(order.options),
        copies=order.copies,
        fiscal_year=order.fiscal_year,
    )


def _call_hash(call: OrderCall) -> str:
    return hashlib.sha256(call.model_dump_json().encode()).hexdigest()


def render_refusal(exc: BaseException) -> CodedRefusal:
    """The centre's answer to a failed render: the document area's own code when it refused
    the content (外字: gaiji_in_record), otherwise render_failed (logged: a fault here)."""
    if isinstance(exc, DocumentError):
        return exc
    logger.error("rendering failed: %s", exc.__class__.__name__, exc_info=exc)
    return LgwanRefusal.of("render_failed")


class MunicipalService:
    """The certificate server of the municipalities in `codes` (None: every municipality of
    its database, the all-in-one deployment). Methods raise RuleViolation (the rules refuse),
    CardCertificateError (certificate_not_registered: no such card here), DocumentError (the
    content cannot be printed) or LgwanRefusal."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        renderer: Renderer,
        render_pool: Executor,
        *,
        codes: frozenset[str] | None = None,
        render_timeout_seconds: float = RENDER_TIMEOUT_SECONDS,
    ) -> None:
        self.factory = factory
        self.renderer = renderer
        self.render_pool = render_pool
        self.codes = codes
        self.render_timeout_seconds = render_timeout_seconds

    def _check_hosted(self, code: str) -> None:
        if self.codes is not None and code not in self.codes:
            raise LgwanRefusal.of("municipality_not_hosted")

    # -- the menu -------------------------------------------------------------------------

    def menu(self, call: MenuCall) -> Menu:
        """What the holder of the card may order now, here and at each 本籍地 they registered."""
        self._check_hosted(call.card.applied_by)
        with self.factory() as session:
            resident_id = holder_of_serial(session, call.card.card_serial, call.card.applied_by)
            try:
                return menu_for(session, resident_id, call.at)
            except RuleViolation as exc:
                # This server's own record keeps why (a DV support measure too); the centre
                # and the kiosk get the neutral code.
                audit.record(
                    session,
                    at=call.at,
                    action="lgwan_menu",
                    outcome=exc.code,
                    card_serial=call.card.card_serial,
                    detail={"municipality_code": call.card.applied_by},
                )
                session.commit()
                raise

    # -- an order -------------------------------------------------------------------------

    async def order(self, call: OrderCall) -> OrderAnswer:
        """Check, number, render and sign the order's copies (see the module's docstring)."""
        placed = await anyio.to_thread.run_sync(self._place, call)
        if isinstance(placed, OrderAnswer):
            return placed
        try:
            rendered = await asyncio.wait_for(
                asyncio.gather(
                    *(asyncio.wrap_future(self.render_pool.submit(self.renderer.render, c)) for c in placed.contents)
                ),
                self.render_timeout_seconds,
            )
        except Exception as exc:  # any render failure fails the whole order
            await anyio.to_thread.run_sync(self._settle, call.request_id, "failed", call.at)
            raise render_refusal(exc) from exc
        answer = _answer(placed, rendered)
        await anyio.to_thread.run_sync(self._store, call.request_id, answer)
        return answer

    def _place(self, call: OrderCall) -> _Placed | OrderAnswer:
        """Check the order and number it, committed under its request id; or the stored
        answer of the same call delivered before. Raises RuleViolation, LgwanRefusal."""
        code = call.order.municipality_code
        self._check_hosted(code)
        digest = _call_hash(call)
        with self.factory() as session, session.begin():
            seen = session.execute(
                select(LgwanOrder).where(LgwanOrder.request_id == call.request_id).with_for_update()
            ).scalar_one_or_none()
            if seen is not None:
                return _replay(seen, digest)
            resident_id = holder_of_serial(session, call.card.card_serial, call.card.applied_by)
            prepared = prepare_order(session, resident_id, order_request(call.order), call.at)
            issuer = prepared.content.issuer
            numbers = allocate_numbers(session, issuer.code, prepared.copies)
            contents = tuple(
                dataclasses.replace(
                    prepared.content,
                    certificate_number=number,
                    requester_serial=call.card.card_serial,
                    signed_at=call.at,
                )
                for number in numbers
            )
            summary = OrderSummary(
                municipality_code=code,
                issuer_name=issuer.name,
                role=call.order.role,
                kind=prepared.content.kind,
                title_ja=prepared.content.kind.title_ja,
                persons=list(prepared.content.subject_names()),
                copies=prepared.copies,
                fee_per_copy_yen=prepared.fee_per_copy_yen,
                fee_total_yen=prepared.total_fee_yen,
                certificate_numbers=numbers,
            )
            session.add(
                LgwanOrder(
                    request_id=call.request_id,
                    municipality_code=code,
                    call_sha256=digest,
                    card_serial=call.card.card_serial,
                    certificate_numbers=" ".join(numbers),
                    created_at=call.at,
                )
            )
        return _Placed(contents, summary)

    # -- what became of an order ----------------------------------------------------------

    def record_outcome(self, call: OutcomeCall) -> str:
        """Record which of an order's numbers were printed (issued) and which not; the stored
        answer (its PDFs) is erased. A later call replaces an earlier one (a kiosk's late
        report). Returns the order's outcome: issued, withdrawn or partly. Raises
        LgwanRefusal (order_unknown, outcome_mismatch, municipality_not_hosted)."""
        issued, withdrawn = set(call.issued), set(call.withdrawn)
        with self.factory() as session, session.begin():
            record = session.execute(
                select(LgwanOrder).where(LgwanOrder.request_id == call.order_request_id).with_for_update()
            ).scalar_one_or_none()
            if record is None:
                raise LgwanRefusal.of("order_unknown")
            self._check_hosted(record.municipality_code)
            if issued & withdrawn or not issued | withdrawn <= set(record.certificate_numbers.split()):
                raise LgwanRefusal.of("outcome_mismatch")
            outcome = "partly" if issued and withdrawn else ("issued" if issued else "withdrawn")
            record.outcome, record.issued_numbers = outcome, " ".join(sorted(issued))
            record.answer, record.settled_at = None, call.at
            audit.record(
                session,
                at=call.at,
                action="lgwan_outcome",
                outcome=outcome,
                card_serial=record.card_serial,
                detail={
                    "order_request_id": record.request_id,
                    "issued": sorted(issued),
                    "withdrawn": sorted(withdrawn),
                },
            )
        return outcome

    def erase_unsettled_answers(self, retention: timedelta = ANSWER_RETENTION) -> int:
        """Erase the stored answers (the PDFs) of orders whose outcome never came, once they
        are `retention` older than the newest order: no repeated delivery comes that late,
        and the centre ended those transactions long ago. Measured on the centre's clock (the
        calls' own times), which may run ahead of this host's in a demo. Returns how many."""
        with self.factory() as session, session.begin():
            newest = session.scalar(select(func.max(LgwanOrder.created_at)))
            if newest is None:
                return 0
            result = session.execute(
                update(LgwanOrder)
                .where(LgwanOrder.answer.is_not(None), LgwanOrder.created_at < newest - retention)
                .values(answer=None, outcome="unreported")
            )
            return rows_matched(result)

    def _store(self, request_id: str, answer: OrderAnswer) -> None:
        with self.factory() as session, session.begin():
            record = session.get(LgwanOrder, request_id)
            if record is not None:
                record.answer = answer.model_dump_json()

    def _settle(self, request_id: str, outcome: str, at: datetime) -> None:
        """Record what became of an order; its stored answer (the PDFs) is erased."""
        with self.factory() as session, session.begin():
            record = session.get(LgwanOrder, request_id)
            if record is not None and record.outcome is None:
                record.outcome, record.answer, record.settled_at = outcome, None, at


def _replay(seen: LgwanOrder, digest: str) -> OrderAnswer:
    """The stored answer of a call delivered again. Raises LgwanRefusal."""
    if seen.call_sha256 != digest:
        raise LgwanRefusal.of("request_id_reused")
    if seen.outcome == "failed":
        raise LgwanRefusal.of("render_failed")
    if seen.answer is None:
        raise LgwanRefusal.of("request_in_progress" if seen.outcome is None else "order_settled")
    return OrderAnswer.model_validate_json(seen.answer)


def _answer(placed: _Placed, rendered: Sequence[Rendered]) -> OrderAnswer:
    return OrderAnswer(
        summary=placed.summary,
        copies=[
            RenderedCopy(
                certificate_number=content.certificate_number,
                kind=content.kind,
                content_sha256=content.content_hash().hex(),
                pdf_sha256=result.sha256,
                pdf=result.pdf,
            )
            for content, result in zip(placed.contents, rendered, strict=True)
        ],
    )
