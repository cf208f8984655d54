"""HTTP client of the issuing service's kiosk API (certserver), with time-outs and one
exception per kind of failure.

Every call carries the kiosk credential (`Authorization: Bearer <kiosk_id>:<secret>`).
Every artefact is addressed by the transaction id the service gave this kiosk: the client
never asks for "the next" anything.
"""

from __future__ import annotations

import base64
import io
import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from kiosk.models import Document, DocumentRef, Menu, Order, OrderAccepted
from kioskapi.models import (
    AuthenticatedResponse,
    DocumentList,
    ErrorBody,
    Health,
    OrderedResponse,
    StartedResponse,
    TransactionStatus,
)

logger = logging.getLogger(__name__)

API = "/api/v1"
# 422 codes that are the kiosk's own fault, not the rules speaking.
_NOT_RULES = frozenset({"invalid_request", "idempotency_key_reused", "amount_mismatch"})
# The API's own pattern of a transaction or document id (docs/api.md; the service's routes
# refuse anything else). An id goes into URLs and the printer's file names, so one that
# does not match is a bad answer, whoever sent it: "../x" must never become a path.
SERVICE_ID = re.compile(r"[A-Za-z0-9_-]{10,64}")


class ServiceError(Exception):
    """The service answered with an error. `code` is the API's stable error code."""

    def __init__(self, code: str, message_ja: str = "", message_en: str = "", status: int = 0) -> None:
        super().__init__(f"{code}: {message_en or message_ja or 'service error'} (HTTP {status})")
        self.code = code
        self.message_ja = message_ja
        self.message_en = message_en
        self.status = status

    @property
    def refused(self) -> bool:
        """The rules refused the request (a RuleViolation: HTTP 422 with a rule's code)."""
        return self.status == 422 and self.code not in _NOT_RULES


class ServiceUnreachableError(ServiceError):
    """No connection to the service (down, refused, DNS)."""

    def __init__(self, detail: str) -> None:
        super().__init__("unreachable", "サービスに接続できません", f"cannot reach the service: {detail}")


class ServiceTimeoutError(ServiceError):
    """The service did not answer in time."""

    def __init__(self, detail: str) -> None:
        super().__init__("timeout", "サービスの応答がありません", f"the service did not answer in time: {detail}")


@dataclass(frozen=True)
class Started:
    transaction_id: str
    challenge: bytes


@dataclass(frozen=True)
class ClientSettings:
    base_url: str
    kiosk_id: str
    kiosk_secret: str = field(repr=False)
    timeout: float = 10.0  # seconds per request (connect, read, write)


class ServiceClient:
    """One kiosk's connection to the service. Thread-safe (httpx.Client is). Every method
    raises ServiceUnreachableError, ServiceTimeoutError or ServiceError."""

    def __init__(self, settings: ClientSettings, *, transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self._http = httpx.Client(
            base_url=settings.base_url.rstrip("/"),
            timeout=httpx.Timeout(settings.timeout),
            headers={"Authorization": f"Bearer {settings.kiosk_id}:{settings.kiosk_secret}"},
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        # One retry after a lost answer: a POST carries an Idempotency-Key, so the retry is
        # replayed by the service instead of being done twice (an order, a payment); a GET
        # (a document download cut by a broken line) is safe to repeat as it is. A caller
        # that retries across calls (outcome reports) brings its own key.
        attempts = 2
        if method == "POST":
            kwargs.setdefault("headers", {}).setdefault("Idempotency-Key", uuid.uuid4().hex)
        for attempt in range(attempts):
            try:
                response = self._http.request(method, path, **kwargs)
                break
            except httpx.TimeoutException as exc:
                if attempt + 1 == attempts:
                    raise ServiceTimeoutError(type(exc).__name__) from None
            except httpx.TransportError as exc:
                if attempt + 1 == attempts or isinstance(exc, httpx.ConnectError):
                    raise ServiceUnreachableError(type(exc).__name__) from None
            logger.info("retrying %s %s once", method, path.split("/")[-1])
        if response.status_code >= 400:
            raise _error_from(response)
        return response

    def _answer(self, model: type[A], what: str, method: str, path: str, **kwargs: Any) -> A:
        """The service's answer as the contract's model. Raises ServiceError("bad_response")
        when it is not JSON or does not fit the model (besides what `_request` raises)."""
        response = self._request(method, path, **kwargs)
        try:
            body = response.json()
        except ValueError:
            raise _bad_response("the service's answer is not JSON", response.status_code) from None
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            raise _bad_response(f"malformed {what} ({exc.error_count()} errors)", response.status_code) from None

    # -- the API (docs/api.md) -----------------------------------------------------------
    def health(self) -> bool:
        """True if the service answers its health check (never raises)."""
        try:
            return self._answer(Health, "health answer", "GET", f"{API}/health").status == "ok"
        except ServiceError:
            return False

    def start_transaction(self) -> Started:
        started = self._answer(StartedResponse, "start answer", "POST", f"{API}/transactions")
        try:
            challenge = _b64(started.challenge)
        except ValueError:
            raise _bad_response("malformed start answer", 201) from None
        return Started(checked_id(started.transaction_id, "transaction"), challenge)

    def authenticate(self, transaction_id: str, certificate: bytes, signature: bytes) -> Menu:
        authenticated = self._answer(
            AuthenticatedResponse,
            "authentication answer",
            "POST",
            f"{_tx(transaction_id)}/authenticate",
            json={"certificate": _enc(certificate), "signature": _enc(signature)},
        )
        return authenticated.menu

    def order(self, transaction_id: str, order: Order) -> OrderAccepted:
        """Raises ServiceError with `refused` True when the rules refuse the order."""
        ordered = self._answer(
            OrderedResponse, "order answer", "POST", f"{_tx(transaction_id)}/order", json=order.model_dump(mode="json")
        )
        if ordered.fee_total_yen is None or ordered.order is None:
            raise _bad_response("an order answer without its fee or order", 200)
        return OrderAccepted(ordered.fee_total_yen, ordered.order.copies, tuple(ordered.order.certificate_numbers))

    def pay(self, transaction_id: str, fee_yen: int) -> None:
        self._answer(
            TransactionStatus, "payment answer", "POST", f"{_tx(transaction_id)}/payment", json={"amount_yen": fee_yen}
        )

    def list_documents(self, transaction_id: str) -> tuple[DocumentRef, ...]:
        """The paid transaction's documents as the service lists them."""
        listed = self._answer(DocumentList, "document list", "GET", f"{_tx(transaction_id)}/documents")
        if listed.transaction_id != transaction_id:
            raise _bad_response("a document list of another transaction", 200)
        return tuple(DocumentRef(checked_id(d.document_id, "document"), d.sha256) for d in listed.documents)

    def fetch_document(self, transaction_id: str, ref: DocumentRef) -> Document:
        """One PDF by its id; the Document says which transaction the service bound it to."""
        url = f"{_tx(transaction_id)}/documents/{checked_id(ref.document_id, 'document')}"
        response = self._request("GET", url)
        owner = response.headers.get("X-Transaction-Id", "")
        return Document(
            DocumentRef(ref.document_id, ref.sha256, count_pages(response.content)), owner, response.content
        )

    def printed(self, transaction_id: str, *, idempotency_key: str | None = None) -> None:
        self._answer(
            TransactionStatus, "printed answer", "POST", f"{_tx(transaction_id)}/printed", headers=_key(idempotency_key)
        )

    def cancel(self, transaction_id: str, *, idempotency_key: str | None = None) -> None:
        self._answer(
            TransactionStatus, "cancel answer", "POST", f"{_tx(transaction_id)}/cancel", headers=_key(idempotency_key)
        )


def count_pages(pdf: bytes) -> int:
    """Pages of a PDF (sheets of paper needed); 1 when it cannot tell."""
    try:
        from pypdf import PdfReader

        return max(1, len(PdfReader(io.BytesIO(pdf)).pages))
    except Exception:  # noqa: BLE001 - a page count is an estimate of paper, never fatal
        return max(1, len(re.findall(rb"/Type\s*/Page(?!s)", pdf)))


def _key(idempotency_key: str | None) -> dict[str, str]:
    return {} if idempotency_key is None else {"Idempotency-Key": idempotency_key}


def checked_id(value: object, what: str) -> str:
    """`value` if it is an id of the API's pattern. Raises ServiceError("bad_response")
    otherwise; the message names what it was, never the value (it may be anything)."""
    if isinstance(value, str) and SERVICE_ID.fullmatch(value):
        return value
    raise _bad_response(f"a malformed {what} id", 200)


def _tx(transaction_id: str) -> str:
    """The URL of a transaction. Raises ServiceError("bad_response") for a malformed id."""
    return f"{API}/transactions/{checked_id(transaction_id, 'transaction')}"


def _bad_response(detail: str, status: int) -> ServiceError:
    return ServiceError("bad_response", "サービスの応答が不正です", detail, status)


def _enc(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _error_from(response: httpx.Response) -> ServiceError:
    """The service's error body (the contract's ErrorBody) as a ServiceError; anything else
    in front of the service (a proxy's page, FastAPI's own `detail`) as the best it can."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    try:
        error = ErrorBody.model_validate(body).error
        return ServiceError(error.code, error.message_ja, error.message_en, response.status_code)
    except ValidationError:
        pass
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, dict):
        return ServiceError(
            str(detail.get("code", f"http_{response.status_code}")),
            str(detail.get("message_ja", "")),
            str(detail.get("message_en", "")),
            response.status_code,
        )
    return ServiceError(f"http_{response.status_code}", "", str(detail or response.reason_phrase), response.status_code)


# Every answer is parsed whole with the contract's own type (kioskapi.models).
_MENU = TypeAdapter(Menu)
T = TypeVar("T")
A = TypeVar("A", bound=BaseModel)


def _parsed(adapter: TypeAdapter[T], raw: object, what: str) -> T:
    """`raw` (parsed JSON) as the contract's type. Raises ServiceError("bad_response") when
    it does not fit; the message names what it was, never the values (they may be personal)."""
    try:
        return adapter.validate_python(raw)
    except ValidationError as exc:
        raise _bad_response(f"malformed {what} ({exc.error_count()} errors)", 200) from None


def parse_menu(raw: Any) -> Menu:
    """The menu from its JSON. Raises ServiceError("bad_response") when it is malformed."""
    return _parsed(_MENU, raw, "menu")
