"""The kiosk API, /api/v1 (docs/api.md). Thin: parse, call the transaction service, shape
the answer. The database work is synchronous: each route hands it to a worker thread with
`in_db_turn`, which lets no more threads run at once than there are connections. An order
waits for its PDFs on the event loop between two such turns, holding neither a thread nor a
connection while the certificates render in their own bounded pool."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Request, Security
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from sqlalchemy import text

from certserver.api.deps import (
    Call,
    begin_idempotent,
    finish_idempotent,
    finish_idempotent_refusal,
    idempotent,
    in_db_turn,
    service_context,
    unit_of_work,
)
from certserver.api.errors import CARD_CODES, REFUSALS, RULE_CODES, declared, invalid_request
from certserver.api.schemas import decode_base64
from certserver.centre.transactions import link_refusal
from certserver.db.models.transactions import KioskTransaction
from certserver.services.authentication import as_utc
from kioskapi.models import (
    AuthenticatedResponse,
    AuthenticateRequest,
    DocumentInfo,
    DocumentList,
    Health,
    MenuResponse,
    Order,
    OrderedResponse,
    OrderSummary,
    Payment,
    StartedResponse,
    TransactionStatus,
)
from lgwanapi.models import CardHolder, OrderCall

logger = logging.getLogger(__name__)
T = TypeVar("T")

# What each route may refuse with (docs/api.md, Errors), declared per route with the one
# error body; FastAPI's own 422 schema is replaced by it.
# Every kiosk call: the credential, the request's shape (path, body, Idempotency-Key), the
# body's size (app.BodySizeLimit), and a bug.
CALL = ("unauthorized_kiosk", "invalid_request", "payload_too_large", "internal_error")
LOAD = ("transaction_not_found", "transaction_expired", "transaction_ended")  # TransactionService.load
# A POST with an Idempotency-Key (deps.idempotent); a replay after the end is `transaction_ended`.
RETRY = ("idempotency_key_reused", "request_in_progress", "transaction_ended")
CHALLENGE = ("challenge_missing", "challenge_used", "challenge_expired")
STATE = ("invalid_state",)
REVOKED = ("certificate_revoked",)  # checked again at payment and release
LINK = ("municipality_unavailable",)  # the municipality did not answer in time


def _retryable() -> dict[str, Any]:
    """The OpenAPI of the header every POST takes (deps.begin_idempotent checks its
    characters); a new dict per route, as FastAPI merges it into the operation in place."""
    return {
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "a retry with the same key and body gets the stored answer",
                "schema": {"type": "string", "minLength": 1, "maxLength": 128},
            }
        ]
    }


# The routes answer JSONResponse bodies they dumped from these models themselves, so
# `response_model` documents the answer without FastAPI validating it a second time.
router = APIRouter(prefix="/api/v1")
# Declares the kiosk credential (docs/api.md) in the document; unit_of_work checks it, so a
# missing one is the contract's 401, not FastAPI's 403.
KIOSK_CREDENTIAL = HTTPBearer(
    scheme_name="kioskBearer", description="`Bearer <kiosk_id>:<secret>`, from `certserver kiosk add`", auto_error=False
)
kiosk_routes = APIRouter(dependencies=[Security(KIOSK_CREDENTIAL)])

# token_urlsafe(32) ids; anything else cannot exist, so it is a plain not-found.
TxId = Annotated[str, Path(min_length=10, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
DocId = Annotated[str, Path(min_length=10, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


def _status_fields(tx: KioskTransaction, order: OrderSummary | None = None) -> dict[str, Any]:
    """The fields of a TransactionStatus (and of the answers that extend it)."""
    if order is None and tx.order_summary:
        order = OrderSummary.model_validate_json(tx.order_summary)
    return {
        "transaction_id": tx.id,
        "state": tx.state,
        # SQLite gives the stored (UTC) time back without its offset; the contract's times carry it.
        "expires_at": as_utc(tx.expires_at),
        "fee_total_yen": tx.fee_total_yen,
        "paid_yen": tx.paid_yen,
        "refunded_yen": tx.refunded_yen,
        "order": order,
    }


def _status(tx: KioskTransaction) -> dict[str, Any]:
    return TransactionStatus(**_status_fields(tx)).model_dump(mode="json")


@router.get(
    "/health", tags=["service"], response_model=Health, responses=declared(("payload_too_large", "internal_error"))
)
def health(request: Request) -> Health:
    """Liveness with a database round trip; needs no kiosk credential."""
    with service_context(request).session_factory() as session:
        session.execute(text("SELECT 1"))
    return Health(status="ok")


@kiosk_routes.post(
    "/transactions",
    status_code=201,
    tags=["transactions"],
    response_model=StartedResponse,
    openapi_extra=_retryable(),
    responses=declared(CALL, RETRY),
)
async def start_transaction(request: Request) -> JSONResponse:
    def work() -> JSONResponse:
        with unit_of_work(request) as c:

            def produce() -> tuple[int, Any]:
                tx, nonce = c.transactions.start(c.session, c.kiosk, c.now)
                body = StartedResponse(
                    transaction_id=tx.id,
                    state=tx.state,
                    challenge=base64.b64encode(nonce).decode(),
                    challenge_expires_at=c.now + timedelta(seconds=c.service.settings.challenge_ttl_seconds),
                    expires_at=tx.expires_at,
                )
                return 201, body.model_dump(mode="json")

            return idempotent(c, request, {}, produce)

    return await in_db_turn(request, work)


@kiosk_routes.get(
    "/transactions/{transaction_id}",
    tags=["transactions"],
    response_model=TransactionStatus,
    responses=declared(CALL, LOAD),
)
async def get_transaction(request: Request, transaction_id: TxId) -> JSONResponse:
    def work() -> JSONResponse:
        with unit_of_work(request) as c:
            return JSONResponse(_status(c.transactions.load(c.session, c.kiosk, transaction_id, c.now)))

    return await in_db_turn(request, work)


@kiosk_routes.post(
    "/transactions/{transaction_id}/authenticate",
    tags=["transactions"],
    response_model=AuthenticatedResponse,
    openapi_extra=_retryable(),
    responses=declared(CALL, LOAD, RETRY, CHALLENGE, STATE, CARD_CODES, RULE_CODES, LINK),
)
async def authenticate(request: Request, transaction_id: TxId, body: AuthenticateRequest) -> JSONResponse:
    certificate = decode_base64(body.certificate)
    signature = decode_base64(body.signature)

    def check_shape(_c: Call) -> None:  # after the kiosk's credential, before anything is written
        if certificate is None or signature is None:
            raise invalid_request("certificate and signature must be standard base64.")

    def check_card(c: Call) -> CardHolder:
        assert certificate is not None and signature is not None  # check_shape ran
        return c.transactions.begin_authentication(c.session, c.kiosk, transaction_id, certificate, signature, c.now)

    card = await _first_turn(request, body.model_dump(), check_card, check_shape)
    if isinstance(card, JSONResponse):
        return card
    # The municipality's answer is awaited between two turns, holding no connection; the
    # rest runs to its end even if the kiosk hangs up, so its Idempotency-Key is answered.
    return await asyncio.shield(asyncio.ensure_future(_menu_and_bind(request, transaction_id, card)))


async def _first_turn(
    request: Request, body: Any, begin: Callable[[Call], T], check: Callable[[Call], None] | None = None
) -> JSONResponse | T:
    """The first database turn of a step that asks a municipality between two turns: the
    stored answer of a retry, or what `begin` returns (its refusal is stored for retries).
    `check` refuses a malformed request before anything is written."""

    def work() -> JSONResponse | T:
        with unit_of_work(request) as c:
            if check is not None:
                check(c)
            replay = begin_idempotent(c, request, body)
            if replay is not None:
                return replay
            try:
                return begin(c)
            except REFUSALS as exc:
                finish_idempotent_refusal(c, exc)
                raise

    return await in_db_turn(request, work)


async def _menu_and_bind(request: Request, transaction_id: str, card: CardHolder) -> JSONResponse:
    context = service_context(request)
    menu = await context.transactions.holder_menu(card, context.clock())

    def bind() -> JSONResponse:
        with unit_of_work(request) as c:
            try:
                tx, bound_menu = c.transactions.finish_authentication(
                    c.session, c.kiosk, transaction_id, card, menu, c.now
                )
            except REFUSALS as exc:
                finish_idempotent_refusal(c, exc)
                raise
            payload = AuthenticatedResponse(**_status_fields(tx), menu=bound_menu).model_dump(mode="json")
            finish_idempotent(c, 200, payload)
            return JSONResponse(payload)

    return await in_db_turn(request, bind)


@kiosk_routes.get(
    "/transactions/{transaction_id}/menu",
    tags=["transactions"],
    response_model=MenuResponse,
    responses=declared(CALL, LOAD, STATE, RULE_CODES, LINK),
)
async def get_menu(request: Request, transaction_id: TxId) -> JSONResponse:
    def work() -> CardHolder:
        with unit_of_work(request) as c:
            return c.transactions.card_of(c.session, c.kiosk, transaction_id, c.now)

    card = await in_db_turn(request, work)
    context = service_context(request)
    menu = await context.transactions.holder_menu(card, context.clock())
    if isinstance(menu, Exception):
        raise link_refusal(menu)
    return JSONResponse(MenuResponse(transaction_id=transaction_id, menu=menu).model_dump(mode="json"))


@kiosk_routes.post(
    "/transactions/{transaction_id}/order",
    tags=["transactions"],
    response_model=OrderedResponse,
    openapi_extra=_retryable(),
    responses=declared(CALL, LOAD, RETRY, STATE, RULE_CODES, ("render_failed",), LINK),
)
async def order(request: Request, transaction_id: TxId, body: Order) -> JSONResponse:
    call = await _first_turn(
        request,
        body.model_dump(mode="json"),
        lambda c: c.transactions.begin_order(c.session, c.kiosk, transaction_id, body, c.now),
    )
    if isinstance(call, JSONResponse):
        return call
    # The rest runs to its end even if the kiosk hangs up: an order the municipality made
    # must be stored or refused, and its Idempotency-Key answered.
    return await asyncio.shield(asyncio.ensure_future(_order_and_store(request, transaction_id, call)))


async def _order_and_store(request: Request, transaction_id: str, call: OrderCall) -> JSONResponse:
    answer = await service_context(request).transactions.municipal_order(call)

    def store() -> JSONResponse:
        with unit_of_work(request) as c:
            try:
                outcome = c.transactions.store_order(c.session, c.kiosk, transaction_id, call, answer, c.now)
            except REFUSALS as exc:
                finish_idempotent_refusal(c, exc)
                raise
            payload = OrderedResponse(
                **_status_fields(outcome.transaction, outcome.summary),
                documents=len(outcome.summary.certificate_numbers),
            ).model_dump(mode="json")
            finish_idempotent(c, 200, payload)
            return JSONResponse(payload)

    return await in_db_turn(request, store)


@kiosk_routes.post(
    "/transactions/{transaction_id}/payment",
    tags=["transactions"],
    response_model=TransactionStatus,
    openapi_extra=_retryable(),
    responses=declared(CALL, LOAD, RETRY, STATE, REVOKED, ("amount_mismatch", "documents_not_ready")),
)
async def payment(request: Request, transaction_id: TxId, body: Payment) -> JSONResponse:
    def work() -> JSONResponse:
        with unit_of_work(request) as c:

            def produce() -> tuple[int, Any]:
                return 200, _status(c.transactions.pay(c.session, c.kiosk, transaction_id, body.amount_yen, c.now))

            return idempotent(c, request, body.model_dump(), produce)

    return await in_db_turn(request, work)


@kiosk_routes.get(
    "/transactions/{transaction_id}/documents",
    tags=["documents"],
    response_model=DocumentList,
    responses=declared(CALL, LOAD, STATE, REVOKED),
)
async def list_documents(request: Request, transaction_id: TxId) -> JSONResponse:
    def work() -> JSONResponse:
        with unit_of_work(request) as c:
            docs = c.transactions.documents(c.session, c.kiosk, transaction_id, c.now)
            return JSONResponse(
                DocumentList(
                    transaction_id=transaction_id,
                    documents=[
                        DocumentInfo(
                            document_id=d.id,
                            certificate_number=d.certificate_number,
                            kind=d.kind,
                            copy_index=d.copy_index,
                            sha256=d.pdf_sha256 or "",
                            size=len(d.pdf or b""),
                        )
                        for d in docs
                    ],
                ).model_dump(mode="json")
            )

    return await in_db_turn(request, work)


@kiosk_routes.get(
    "/transactions/{transaction_id}/documents/{document_id}",
    tags=["documents"],
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}},
        **declared(CALL, LOAD, STATE, REVOKED, ("document_not_found",)),
    },
)
async def get_document(request: Request, transaction_id: TxId, document_id: DocId) -> Response:
    def work() -> Response:
        with unit_of_work(request) as c:
            doc = c.transactions.document(c.session, c.kiosk, transaction_id, document_id, c.now)
            assert doc.pdf is not None  # document() refuses a document without its PDF
            return Response(
                doc.pdf,
                media_type="application/pdf",
                headers={
                    "X-Certificate-Number": doc.certificate_number,
                    "X-Content-SHA256": doc.pdf_sha256 or "",
                    "X-Transaction-Id": transaction_id,
                    "Cache-Control": "no-store",
                },
            )

    return await in_db_turn(request, work)


@kiosk_routes.post(
    "/transactions/{transaction_id}/printed",
    tags=["transactions"],
    response_model=TransactionStatus,
    openapi_extra=_retryable(),
    responses=declared(CALL, LOAD, RETRY, STATE, ("documents_not_fetched",)),
)
async def printed(request: Request, transaction_id: TxId) -> JSONResponse:
    return await _ending(request, lambda c: c.transactions.printed(c.session, c.kiosk, transaction_id, c.now))


@kiosk_routes.post(
    "/transactions/{transaction_id}/cancel",
    tags=["transactions"],
    response_model=TransactionStatus,
    openapi_extra=_retryable(),
    responses=declared(CALL, LOAD, RETRY),
)
async def cancel(request: Request, transaction_id: TxId) -> JSONResponse:
    return await _ending(request, lambda c: c.transactions.cancel(c.session, c.kiosk, transaction_id, c.now))


async def _ending(request: Request, end: Callable[[Call], KioskTransaction]) -> JSONResponse:
    """A body-less, idempotent step that answers the transaction's status (printed, cancel)."""

    def work() -> JSONResponse:
        with unit_of_work(request) as c:
            return idempotent(c, request, {}, lambda: (200, _status(end(c))))

    answer = await in_db_turn(request, work)
    _report_outcomes_soon(request)
    return answer


_REPORTING: set[asyncio.Task[int]] = set()  # the running deliveries (a task needs a reference)


def _report_outcomes_soon(request: Request) -> None:
    """Tell the municipalities what became of the ended orders now, in the background (the
    sweep retries what this does not deliver)."""
    context = service_context(request)

    async def deliver() -> int:
        try:
            return await context.transactions.deliver_outcomes(context.session_factory, context.clock())
        except Exception:  # the service shutting down, a busy database: the sweep sends them later
            logger.warning("order outcomes not reported now; the sweep retries them", exc_info=True)
            return 0

    task = asyncio.get_running_loop().create_task(deliver())
    _REPORTING.add(task)
    task.add_done_callback(_REPORTING.discard)


router.include_router(kiosk_routes)
