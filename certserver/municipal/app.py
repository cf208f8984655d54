"""A municipality's certificate server as an HTTP service: the LGWAN API, /lgwan/v1
(docs/lgwan.md), which only the centre may call (mutual TLS: the server trusts the LGWAN
centre CA alone, see certserver.lgwan.tls).

Refusals travel as the kiosk API's error body with a status that says whose they are: 422 a
rule's (with the kiosk-facing code: a DV support measure stays here), 403 a card's, 503 a
render's, 409 the call's own (a used request id, an order still rendering), 404 a
municipality this server does not serve.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from certserver.documents.errors import DocumentError
from certserver.municipal.service import LgwanRefusal, MunicipalService
from certserver.pki.validation import CardCertificateError
from certserver.refusals import messages
from certserver.services.ordering import RuleViolation
from certserver.services.rules.violations import kiosk_facing
from kioskapi.models import ErrorBody, ErrorDetail
from lgwanapi.models import LgwanHealth, MenuAnswer, MenuCall, OrderAnswer, OrderCall

logger = logging.getLogger(__name__)

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

STATUS_OF_LGWAN_CODE = {
    "municipality_not_hosted": 404,
    "request_id_reused": 409,
    "request_in_progress": 409,
    "order_settled": 409,
    "render_failed": 503,
}


def _error(status: int, code: str, message_ja: str, message_en: str) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(code=code, message_ja=message_ja, message_en=message_en))
    return JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=status)


def status_and_code(exc: Exception) -> tuple[int, str, str, str]:
    """(status, code, message_ja, message_en) a refusal leaves this server with."""
    if isinstance(exc, RuleViolation):
        return 422, *kiosk_facing(exc.code, exc.message_ja, exc.message_en)
    if isinstance(exc, CardCertificateError):
        return 403, exc.code, exc.message_ja, exc.message_en
    if isinstance(exc, DocumentError):
        return 503, exc.code, exc.message_ja, exc.message_en
    if isinstance(exc, LgwanRefusal):
        return STATUS_OF_LGWAN_CODE.get(exc.code, 409), exc.code, exc.message_ja, exc.message_en
    raise TypeError(exc)  # pragma: no cover - only the classes above are registered


async def _refusal(_request: Request, exc: Exception) -> JSONResponse:
    return _error(*status_and_code(exc))


async def _invalid(_request: Request, exc: Exception) -> JSONResponse:
    # Where the call broke the contract goes to the log, never its content (it may name people).
    if isinstance(exc, RequestValidationError):
        logger.warning("an LGWAN call broke the contract at %s", [e.get("loc") for e in exc.errors()[:5]])
    return _error(422, "invalid_request", *messages("invalid_request", detail="The call is not valid."))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error(500, "internal_error", *messages("internal_error"))


def build_municipal_app(service: MunicipalService, served: list[str], lifespan: Lifespan | None = None) -> FastAPI:
    """The LGWAN API over `service`; `served` are the municipality codes it answers for."""
    app = FastAPI(
        title="konbini-kiosk municipality certificate server",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url="/lgwan/v1/openapi.json",
        lifespan=lifespan,
    )
    for exc_type in (RuleViolation, CardCertificateError, DocumentError, LgwanRefusal):
        app.add_exception_handler(exc_type, _refusal)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(Exception, _unexpected)

    @app.get("/lgwan/v1/health", response_model=LgwanHealth)
    async def health() -> LgwanHealth:
        return LgwanHealth(status="ok", municipalities=served)

    @app.post("/lgwan/v1/menu", response_model=MenuAnswer)
    async def menu(call: MenuCall) -> JSONResponse:
        result = await anyio.to_thread.run_sync(service.menu, call)
        return JSONResponse(MenuAnswer(menu=result).model_dump(mode="json"))

    @app.post("/lgwan/v1/orders", response_model=OrderAnswer)
    async def order(call: OrderCall) -> JSONResponse:
        answer = await service.order(call)
        return JSONResponse(answer.model_dump(mode="json"))

    return app
