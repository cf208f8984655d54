"""The centre's link to the municipalities' certificate servers (docs/lgwan.md).

The transaction service asks a municipality for a card holder's menu and for an order, and
tells it each order's outcome, never reading a registry itself. Two links answer the same
calls:
- `LocalMunicipalities`: the certificate server in this process (the all-in-one
  deployment, and the tests of the transaction rules);
- `LgwanMunicipalities`: each municipality's server over HTTP with mutual TLS.
Both raise what the municipality refused with as the centre's own refusals (RuleViolation,
CardCertificateError, MunicipalityRefusal for a failed render or a document's own refusal),
so the transaction service cannot tell them apart; a municipality that does not answer in time is
`municipality_unavailable`, which ends the transaction whole.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol, TypeVar

import anyio.to_thread
import httpx
from pydantic import ValidationError

from certserver.documents.errors import DocumentError
from certserver.municipal.service import LgwanRefusal, MunicipalService
from certserver.pki.validation import CardCertificateError
from certserver.refusals import MESSAGES, CodedRefusal
from certserver.services.ordering import Menu, RuleViolation
from certserver.services.rules.violations import kiosk_facing
from kioskapi.models import ErrorBody
from lgwanapi.models import MenuAnswer, MenuCall, OrderAnswer, OrderCall, OutcomeAnswer, OutcomeCall

logger = logging.getLogger(__name__)

LGWAN_TIMEOUT_SECONDS = 30.0  # an order renders and signs before it answers


class MunicipalityRefusal(CodedRefusal):
    """The order could not be made, for no rule: `municipality_unavailable` (no answer in
    time, or an answer outside the contract), `render_failed`, or the document's own refusal
    of its content (`gaiji_in_record`). The centre ends the transaction whole."""


class MunicipalityLink(Protocol):
    async def menu(self, call: MenuCall) -> Menu: ...
    async def order(self, call: OrderCall) -> OrderAnswer: ...
    async def outcome(self, municipality_code: str, call: OutcomeCall) -> str: ...


def _card_error_classes(
    base: type[CardCertificateError] = CardCertificateError,
) -> dict[str, type[CardCertificateError]]:
    classes: dict[str, type[CardCertificateError]] = {}
    for cls in base.__subclasses__():
        classes[cls.code] = cls
        classes |= _card_error_classes(cls)
    return classes


_CARD_ERRORS = _card_error_classes()


RENDER_REFUSED_STATUS = 503  # a render's refusal or failure, as against a rule's (422) or a card's (403)


def refusal_of(status: int, code: str, message_ja: str, message_en: str) -> Exception:
    """The centre's exception for a municipality's refusal (`status`, `code`)."""
    if code in _CARD_ERRORS:
        return _CARD_ERRORS[code]("refused by the municipality")
    if code not in MESSAGES or code in ("invalid_request", "internal_error"):
        logger.warning("a municipality refused with a code outside the contract: %.40r", code)
        return MunicipalityRefusal.of("municipality_unavailable")
    if status == RENDER_REFUSED_STATUS or code in ("render_failed", "municipality_unavailable"):
        return MunicipalityRefusal(code, message_ja, message_en)
    if status == 422:
        return RuleViolation(code, message_ja, message_en)
    # request_id_reused, request_in_progress ...: a fault of the link, not a person's refusal.
    logger.warning("a municipality refused a call with %s (%d)", code, status)
    return MunicipalityRefusal.of("municipality_unavailable")


def _as_centre_refusal(exc: Exception) -> Exception:
    """A refusal of the certificate server in this process as the centre takes it."""
    if isinstance(exc, RuleViolation):
        # A confidential reason (a DV support measure) stays with the municipality.
        code, ja, en = kiosk_facing(exc.code, exc.message_ja, exc.message_en)
        return exc if code == exc.code else RuleViolation(code, ja, en)
    if isinstance(exc, DocumentError):
        return MunicipalityRefusal(exc.code, exc.message_ja, exc.message_en)
    if isinstance(exc, LgwanRefusal):
        return refusal_of(
            RENDER_REFUSED_STATUS if exc.code == "render_failed" else 409, exc.code, exc.message_ja, exc.message_en
        )
    return exc


class LocalMunicipalities:
    """The certificate server in this process."""

    def __init__(self, service: MunicipalService) -> None:
        self.service = service

    async def menu(self, call: MenuCall) -> Menu:
        try:
            return await anyio.to_thread.run_sync(self.service.menu, call)
        except (RuleViolation, DocumentError, LgwanRefusal) as exc:
            raise _as_centre_refusal(exc) from None

    async def order(self, call: OrderCall) -> OrderAnswer:
        try:
            return await self.service.order(call)
        except (RuleViolation, DocumentError, LgwanRefusal) as exc:
            raise _as_centre_refusal(exc) from None

    async def outcome(self, municipality_code: str, call: OutcomeCall) -> str:
        try:
            return await anyio.to_thread.run_sync(self.service.record_outcome, call)
        except LgwanRefusal as exc:
            raise _as_centre_refusal(exc) from None


class LgwanMunicipalities:
    """Each municipality's certificate server over HTTP (mutual TLS in production: the
    client carries the centre's certificate). `endpoints` maps a municipality code to its
    server's base URL; a code without one is not served (municipality_not_available)."""

    def __init__(self, endpoints: Mapping[str, str], client: httpx.AsyncClient) -> None:
        self.endpoints = dict(endpoints)
        self.client = client

    async def menu(self, call: MenuCall) -> Menu:
        answer = await self._call(call.card.applied_by, "/lgwan/v1/menu", call.model_dump(mode="json"))
        return _parse(MenuAnswer, answer).menu

    async def order(self, call: OrderCall) -> OrderAnswer:
        answer = await self._call(call.order.municipality_code, "/lgwan/v1/orders", call.model_dump(mode="json"))
        return _parse(OrderAnswer, answer)

    async def outcome(self, municipality_code: str, call: OutcomeCall) -> str:
        answer = await self._call(municipality_code, "/lgwan/v1/outcomes", call.model_dump(mode="json"))
        return _parse(OutcomeAnswer, answer).outcome

    async def _call(self, code: str, path: str, body: object) -> httpx.Response:
        """POST `body` to the municipality's server; a connection that failed before any
        answer is tried once more (the call is idempotent by its request id)."""
        base = self.endpoints.get(code)
        if base is None:
            raise RuleViolation.of("municipality_not_available")
        for attempt in (1, 2):
            try:
                response = await self.client.post(base.rstrip("/") + path, json=body)
                break
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
                if attempt == 2:
                    logger.warning("municipality %s did not answer (%s)", code, exc.__class__.__name__)
                    raise MunicipalityRefusal.of("municipality_unavailable") from exc
            except httpx.HTTPError as exc:  # a time-out: the call may still run there
                logger.warning("municipality %s did not answer in time (%s)", code, exc.__class__.__name__)
                raise MunicipalityRefusal.of("municipality_unavailable") from exc
        if response.status_code == 200:
            return response
        raise _refusal_in(code, response)


def _refusal_in(code: str, response: httpx.Response) -> Exception:
    try:
        error = ErrorBody.model_validate_json(response.content).error
    except ValidationError:
        logger.warning("municipality %s answered %d outside the contract", code, response.status_code)
        return MunicipalityRefusal.of("municipality_unavailable")
    return refusal_of(response.status_code, error.code, error.message_ja, error.message_en)


_Answer = TypeVar("_Answer", MenuAnswer, OrderAnswer, OutcomeAnswer)


def _parse(model: type[_Answer], response: httpx.Response) -> _Answer:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        logger.warning("a municipality's answer broke the LGWAN contract (%d errors)", exc.error_count())
        raise MunicipalityRefusal.of("municipality_unavailable") from exc
