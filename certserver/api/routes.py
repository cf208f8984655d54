"""The kiosk API, /api/v1 (docs/api.md). Thin: parse, call the transaction service, shape
the answer. The database work is synchronous: each route hands it to a worker thread with
`in_db_turn`, which lets no more threads run at once than there are connections. An order
waits for its PDFs on the event loop between two such turns, holding neither a thread nor a
connection while the certificates render in their own bounded pool."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
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
from certserver.api.errors import REFUSALS, invalid_request
from certserver.api.schemas import (
    AuthenticateRequest,
    DocumentInfo,
    DocumentList,
    OrderBody,
    PaymentBody,
    StartedResponse,
    TransactionStatus,
    decode_base64,
)
from certserver.db.models.transactions import KioskTransaction
from certserver.services.ordering import Menu, OrderRequest
from certserver.services.transactions import (
    RENDER_TIMEOUT_SECONDS,
    PlacedOrder,
    Rendered,
    render_failure,
)

router = APIRouter(prefix="/api/v1")

# token_urlsafe(32) ids; anything else cannot exist, so it is a plain not-found.
TxId = Annotated[str, Path(min_length=10, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
DocId = Annotated[str, Path(min_length=10, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


def _status(tx: KioskTransaction, order: dict[str, Any] | None = None) -> dict[str, Any]:
    if order is None and tx.order_summary:
        order = json.loads(tx.order_summary)
    return TransactionStatus(
        transaction_id=tx.id, state=tx.state, expires_at=tx.expires_at, fee_total_yen=tx.fee_total_yen,
        paid_yen=tx.paid_yen, refunded_yen=tx.refunded_yen, order=order,
    ).model_dump(mode="json")


def menu_json(menu: Menu) -> dict[str, Any]:
    """The menu as JSON (dataclasses of certserver.services.ordering, enums as their codes)."""
    return json.loads(json.dumps(dataclasses.asdict(menu), ensure_ascii=False, default=str))


@router.get("/health", tags=["service"])
def health(request: Request) -> dict[str, str]:
    """Liveness with a database round trip; needs no kiosk credential."""
    with service_context(request).session_factory() as session:
        session.execute(text("SELECT 1"))
    return {"status": "ok"}


@router.post("/transactions", status_code=201, tags=["transactions"])
async def start_transaction(request: Request) -> JSONResponse:
    def work() -> JSONResponse:
        with unit_of_work(request) as c:
            def produce() -> tuple[int, Any]:
                tx, nonce = c.transactions.start(c.session, c.kiosk, c.now)
                body = StartedResponse(
                    transaction_id=tx.id, state=tx.state, challenge=base64.b64encode(nonce).decode(),
                    challenge_expires_at=c.now + timedelta(seconds=c.service.settings.challenge_ttl_seconds),
                    expires_at=tx.expires_at,
                )
                return 201, body.model_dump(mode="json")

            return idempotent(c, request, {}, produce)

    return await in_db_turn(request, work)


@router.get("/transactions/{transaction_id}", tags=["transactions"])
async def get_transaction(request: Request, transaction_id: TxId) -> dict[str, Any]:
    def work() -> dict[str, Any]:
        with unit_of_work(request) as c:
            return _status(c.transactions.load(c.session, c.kiosk, transaction_id, c.now))

    return await in_db_turn(request, work)


@router.post("/transactions/{transaction_id}/authenticate", tags=["transactions"])
async def authenticate(request: Request, transaction_id: TxId, body: AuthenticateRequest) -> JSONResponse:
    def work() -> JSONResponse:
        with unit_of_work(request) as c:
            certificate = decode_base64(body.certificate)
            signature = decode_base64(body.signature)
            if certificate is None or signature is None:
                raise invalid_request("certificate and signature must be standard base64.")

            def produce() -> tuple[int, Any]:
                tx, menu = c.transactions.authenticate(c.session, c.kiosk, transaction_id, certificate, signature,
                                                       c.now)
                return 200, {**_status(tx), "menu": menu_json(menu)}

            return idempotent(c, request, body.model_dump(), produce)

    return await in_db_turn(request, work)


@router.get("/transactions/{transaction_id}/menu", tags=["transactions"])
async def get_menu(request: Request, transaction_id: TxId) -> dict[str, Any]:
    def work() -> dict[str, Any]:
        with unit_of_work(request) as c:
            return {"transaction_id": transaction_id,
                    "menu": menu_json(c.transactions.menu(c.session, c.kiosk, transaction_id, c.now))}

    return await in_db_turn(request, work)


@router.post("/transactions/{transaction_id}/order", tags=["transactions"])
async def order(request: Request, transaction_id: TxId, body: OrderBody) -> JSONResponse:
    order_request = OrderRequest(
        municipality_code=body.municipality_code, role=body.role, kind=body.kind,
        person_ids=tuple(body.person_ids), whole_household=body.whole_household,
        options=frozenset(body.options), copies=body.copies, fiscal_year=body.fiscal_year,
    )

    def place() -> JSONResponse | PlacedOrder:
        with unit_of_work(request) as c:
            replay = begin_idempotent(c, request, body.model_dump(mode="json"))
            if replay is not None:
                return replay
            try:
                return c.transactions.place_order(c.session, c.kiosk, transaction_id, order_request, c.now)
            except REFUSALS as exc:
                finish_idempotent_refusal(c, exc)
                raise

    placed = await in_db_turn(request, place)
    if isinstance(placed, JSONResponse):
        return placed
    # The rest runs to its end even if the kiosk hangs up: a placed order must be stored or
    # ended, and its Idempotency-Key answered, never left rendering.
    return await asyncio.shield(asyncio.ensure_future(_render_and_store(request, placed)))


async def _render_and_store(request: Request, placed: PlacedOrder) -> JSONResponse:
    transactions = service_context(request).transactions
    rendered: list[Rendered] | Exception
    try:
        rendered = list(await asyncio.wait_for(
            asyncio.gather(*(asyncio.wrap_future(f) for f in transactions.render(placed))), RENDER_TIMEOUT_SECONDS))
    except Exception as exc:  # any render failure ends the transaction, never half an order
        rendered = render_failure(exc)

    def store() -> JSONResponse:
        with unit_of_work(request) as c:
            try:
                outcome = c.transactions.store_rendered(c.session, c.kiosk, placed, rendered, c.now)
            except REFUSALS as exc:
                finish_idempotent_refusal(c, exc)
                raise
            payload = _status(outcome.transaction, outcome.summary)
            payload["documents"] = len(outcome.summary["certificate_numbers"])
            finish_idempotent(c, 200, payload)
            return JSONResponse(payload)

    return await in_db_turn(request, store)


@router.post("/transactions/{transaction_id}/payment", tags=["transactions"])
async def payment(request: Request, transaction_id: TxId, body: PaymentBody) -> JSONResponse:
    def work() -> JSONResponse:
        with unit_of_work(request) as c:
            def produce() -> tuple[int, Any]:
                return 200, _status(c.transactions.pay(c.session, c.kiosk, transaction_id, body.amount_yen, c.now))

            return idempotent(c, request, body.model_dump(), produce)

    return await in_db_turn(request, work)


@router.get("/transactions/{transaction_id}/documents", tags=["documents"])
async def list_documents(request: Request, transaction_id: TxId) -> dict[str, Any]:
    def work() -> dict[str, Any]:
        with unit_of_work(request) as c:
            docs = c.transactions.documents(c.session, c.kiosk, transaction_id, c.now)
            return DocumentList(transaction_id=transaction_id, documents=[
                DocumentInfo(document_id=d.id, certificate_number=d.certificate_number, kind=d.kind,
                             copy_index=d.copy_index, sha256=d.pdf_sha256 or "", size=len(d.pdf or b""))
                for d in docs
            ]).model_dump(mode="json")

    return await in_db_turn(request, work)


@router.get("/transactions/{transaction_id}/documents/{document_id}", tags=["documents"],
            response_class=Response, responses={200: {"content": {"application/pdf": {}}}})
async def get_document(request: Request, transaction_id: TxId, document_id: DocId) -> Response:
    def work() -> Response:
        with unit_of_work(request) as c:
            doc = c.transactions.document(c.session, c.kiosk, transaction_id, document_id, c.now)
            assert doc.pdf is not None  # document() refuses a document without its PDF
            return Response(doc.pdf, media_type="application/pdf", headers={
                "X-Certificate-Number": doc.certificate_number,
                "X-Content-SHA256": doc.pdf_sha256 or "",
                "X-Transaction-Id": transaction_id,
                "Cache-Control": "no-store",
            })

    return await in_db_turn(request, work)


@router.post("/transactions/{transaction_id}/printed", tags=["transactions"])
async def printed(request: Request, transaction_id: TxId) -> JSONResponse:
    return await _ending(request, lambda c: c.transactions.printed(c.session, c.kiosk, transaction_id, c.now))


@router.post("/transactions/{transaction_id}/cancel", tags=["transactions"])
async def cancel(request: Request, transaction_id: TxId) -> JSONResponse:
    return await _ending(request, lambda c: c.transactions.cancel(c.session, c.kiosk, transaction_id, c.now))


async def _ending(request: Request, end: Callable[[Call], KioskTransaction]) -> JSONResponse:
    """A body-less, idempotent step that answers the transaction's status (printed, cancel)."""
    def work() -> JSONResponse:
        with unit_of_work(request) as c:
            return idempotent(c, request, {}, lambda: (200, _status(end(c))))

    return await in_db_turn(request, work)
