"""Stable error codes of the kiosk API and their HTTP statuses.

Every refusal reaches the kiosk as `{"error": {"code", "message_ja", "message_en"}}` with
the status below; the code is the contract (docs/api.md lists them), the messages are for the
person at the kiosk. Bad input of any shape is a 4xx, never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from certserver.centre.transactions import TransactionError
from certserver.pki.validation import CardCertificateError
from certserver.refusals import MESSAGES, CodedRefusal, messages
from certserver.services.authentication import ChallengeError
from certserver.services.kiosks import KioskAuthenticationError
from certserver.services.ordering import RuleViolation
from certserver.services.rules.violations import CONFIDENTIAL_CODES, kiosk_facing
from kioskapi.models import ErrorBody, ErrorDetail

logger = logging.getLogger(__name__)


class ApiError(CodedRefusal):
    """A refusal made by the API layer itself (credentials, request shape, idempotency)."""


# Exceptions that are answers, not failures: the request's writes (audit entry, spent
# challenge, ended transaction) are committed and the kiosk gets the code.
REFUSALS: tuple[type[Exception], ...] = (
    ApiError,
    TransactionError,
    ChallengeError,
    RuleViolation,
    CardCertificateError,
)

STATUS_BY_CODE: dict[str, int] = {
    "unauthorized_kiosk": 401,
    "not_found": 404,
    "transaction_not_found": 404,
    "document_not_found": 404,
    "method_not_allowed": 405,
    "invalid_state": 409,
    "transaction_ended": 409,
    "challenge_used": 409,
    "challenge_missing": 409,
    "documents_not_ready": 409,
    "documents_not_fetched": 409,
    "request_in_progress": 409,
    "transaction_expired": 410,
    "challenge_expired": 410,
    "payload_too_large": 413,
    "uri_too_long": 414,
    "unsupported_media_type": 415,
    "invalid_request": 422,
    "idempotency_key_reused": 422,
    "amount_mismatch": 422,
    "internal_error": 500,
    "render_failed": 503,
    "municipality_unavailable": 503,
    "not_configured": 503,
}
CARD_REFUSED_STATUS = 403  # every CardCertificateError: the card may not authenticate
RULE_REFUSED_STATUS = 422  # every RuleViolation: the order is not allowed
# An HTTPException's status, raised by a route or by the framework, as the code it answers.
CODE_BY_HTTP_STATUS = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large", 414: "uri_too_long"}
CODE_BY_HTTP_STATUS |= {415: "unsupported_media_type", 503: "not_configured"}


def _card_codes(base: type[CardCertificateError] = CardCertificateError) -> list[str]:
    codes = []
    for cls in base.__subclasses__():
        codes += [cls.code, *_card_codes(cls)]
    return codes


# The codes a card refusal can carry (403), in the order the classes are written.
CARD_CODES: tuple[str, ...] = tuple(dict.fromkeys(_card_codes()))
# The catalogue's codes that never reach a kiosk as themselves, and why.
NOT_SENT: dict[str, str] = {
    **dict.fromkeys(CONFIDENTIAL_CODES, "confidential: the kiosk gets `not_available_at_kiosk`"),
    "font_missing": "a document error: the order ends with `render_failed`",
    "signer_missing": "a document error: the order ends with `render_failed`",
    "signer_invalid": "a document error: the order ends with `render_failed`",
    "http_error": "the messages of an HTTP error that has no code of its own",
    **dict.fromkeys(
        ("municipality_not_hosted", "request_id_reused", "order_settled", "order_unknown", "outcome_mismatch"),
        "an LGWAN refusal of the centre's call: the kiosk gets `municipality_unavailable`",
    ),
}
# Every other code of the catalogue that no table above gives a status is a rule's (422).
RULE_CODES: tuple[str, ...] = tuple(c for c in MESSAGES if c not in STATUS_BY_CODE and c not in NOT_SENT)


def status_for(exc: Exception) -> int:
    if isinstance(exc, CardCertificateError):
        return CARD_REFUSED_STATUS
    code = getattr(exc, "code", "")
    if isinstance(exc, RuleViolation):
        return STATUS_BY_CODE.get(code, RULE_REFUSED_STATUS)
    return STATUS_BY_CODE.get(code, 422)


def status_of_code(code: str) -> int:
    """The HTTP status a refusal with `code` is answered with."""
    if code in CARD_CODES:
        return CARD_REFUSED_STATUS
    return STATUS_BY_CODE.get(code, RULE_REFUSED_STATUS)


def declared(*groups: Iterable[str]) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of a route that may refuse with the codes of `groups`: one
    entry per status, with the contract's ErrorBody and the codes it carries (listed in the
    description and as `x-error-codes`, which the documentation test reads)."""
    by_status: dict[int, list[str]] = {}
    for code in dict.fromkeys(code for group in groups for code in group):
        by_status.setdefault(status_of_code(code), []).append(code)
    return {
        status: {
            "model": ErrorBody,
            "description": ", ".join(f"`{code}`" for code in codes),
            "x-error-codes": codes,
        }
        for status, codes in sorted(by_status.items())
    }


def error_body(
    code: str, message_ja: str, message_en: str, fields: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The contract's error body as JSON; `fields` only for a request-shape error."""
    error = ErrorDetail(code=code, message_ja=message_ja, message_en=message_en, fields=fields)
    return ErrorBody(error=error).model_dump(mode="json", exclude_none=True)


def refusal_response(exc: Exception) -> tuple[int, dict[str, Any]]:
    """(status, body) of a refusal, also what idempotency records store. A confidential
    code (a DV support measure) leaves as the neutral `not_available_at_kiosk`; only the
    audit log, written by the service before the refusal is raised, keeps the real one."""
    code, message_ja, message_en = kiosk_facing(exc.code, exc.message_ja, exc.message_en)  # type: ignore[attr-defined]
    return status_for(exc), error_body(code, message_ja, message_en)


def unauthorized() -> ApiError:
    return ApiError.of("unauthorized_kiosk")


def invalid_request(message_en: str) -> ApiError:
    return ApiError.of("invalid_request", detail=message_en)


async def _refusal_handler(_request: Request, exc: Exception) -> JSONResponse:
    status, body = refusal_response(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


async def _kiosk_auth_handler(_request: Request, exc: Exception) -> JSONResponse:
    return await _refusal_handler(_request, unauthorized())


async def _validation_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Where and what, never the input itself (it may be huge or personal).
    fields = [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "type": str(err.get("type", "")),
            "msg": str(err.get("msg", "")),
        }
        for err in exc.errors()[:20]
    ]
    body = error_body(
        "invalid_request", *messages("invalid_request", detail="The request is not valid."), fields=fields
    )
    return JSONResponse(body, status_code=422)


async def _http_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:  # a body FastAPI could not even decode: same as any bad body
        body = error_body("invalid_request", *messages("invalid_request", detail="The request body could not be read."))
        return JSONResponse(body, status_code=422)
    code = CODE_BY_HTTP_STATUS.get(exc.status_code)
    if code is not None:
        body = error_body(code, *messages(code))
    else:
        body = error_body(f"http_{exc.status_code}", *messages("http_error", detail=exc.detail))
    return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def _unexpected_handler(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    body = error_body("internal_error", *messages("internal_error"))
    return JSONResponse(body, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception the API can meet to its stable JSON error."""
    for exc_type in REFUSALS:
        app.add_exception_handler(exc_type, _refusal_handler)
    app.add_exception_handler(KioskAuthenticationError, _kiosk_auth_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    app.add_exception_handler(Exception, _unexpected_handler)
