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
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from certserver.documents.errors import DocumentError
from certserver.municipal.service import LgwanRefusal, MunicipalService
from certserver.pki.validation import CardCertificateError
from certserver.refusals import messages
from certserver.services.ordering import RuleViolation
from certserver.services.rules.violations import kiosk_facing
from kioskapi.models import ErrorBody, ErrorDetail
from lgwanapi.models import LgwanHealth, MenuAnswer, MenuCall, OrderAnswer, OrderCall, OutcomeAnswer, OutcomeCall

logger = logging.getLogger(__name__)

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

STATUS_OF_LGWAN_CODE = {
    "municipality_not_hosted": 404,
    "request_id_reused": 409,
    "request_in_progress": 409,
    "order_settled": 409,
    "order_unknown": 404,
    "outcome_mismatch": 409,
    "render_failed": 503,
}


def _declared(*extra: tuple[int, tuple[str, ...]]) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of a call: its refusals by status, each with the one error
    body and the codes it carries (`x-error-codes`, as the kiosk API declares them)."""
    by_status: dict[int, list[str]] = {
        403: ["certificate_not_registered"],
        404: ["municipality_not_hosted"],
        422: ["invalid_request", "not_available_at_kiosk", "(any rule code of docs/api.md)"],
        500: ["internal_error"],
    }
    for status, codes in extra:
        by_status.setdefault(status, []).extend(codes)
    return {
        status: {"model": ErrorBody, "description": ", ".join(f"`{c}`" for c in codes), "x-error-codes": codes}
        for status, codes in sorted(by_status.items())
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


async def _http(_request: Request, exc: Exception) -> JSONResponse:
    """The framework's own refusals in the contract's body: a body it could not even decode
    is a call that breaks the contract (422, as any other); no such path or method, theirs."""
    status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
    if status == 400:
        return _error(422, "invalid_request", *messages("invalid_request", detail="The call body could not be read."))
    code = {404: "not_found", 405: "method_not_allowed"}.get(status, "internal_error")
    return _error(status, code, *messages(code))


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
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)

    @app.get("/lgwan/v1/health", response_model=LgwanHealth)
    async def health() -> LgwanHealth:
        return LgwanHealth(status="ok", municipalities=served)

    @app.post("/lgwan/v1/menu", response_model=MenuAnswer, responses=_declared())
    async def menu(call: MenuCall) -> JSONResponse:
        result = await anyio.to_thread.run_sync(service.menu, call)
        return JSONResponse(MenuAnswer(menu=result).model_dump(mode="json"))

    @app.post(
        "/lgwan/v1/orders",
        response_model=OrderAnswer,
        responses=_declared(
            (409, ("request_in_progress", "request_id_reused", "order_settled")),
            (503, ("render_failed", "gaiji_in_record")),
        ),
    )
    async def order(call: OrderCall) -> JSONResponse:
        answer = await service.order(call)
        return JSONResponse(answer.model_dump(mode="json"))

    @app.post(
        "/lgwan/v1/outcomes",
        response_model=OutcomeAnswer,
        responses=_declared((404, ("order_unknown",)), (409, ("outcome_mismatch",))),
    )
    async def outcome(call: OutcomeCall) -> JSONResponse:
        result = await anyio.to_thread.run_sync(service.record_outcome, call)
        return JSONResponse(OutcomeAnswer(outcome=result).model_dump(mode="json"))

    return app
