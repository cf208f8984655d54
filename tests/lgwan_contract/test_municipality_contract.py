"""A municipality's certificate server holds to the LGWAN contract (docs/lgwan.md): each test
is one clause, checked over HTTPS with the centre's certificate (see conftest.py to point it
at another server)."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import httpx
from lgwan_contract_target import Target

from kioskapi.models import ErrorBody
from lgwanapi.models import LgwanHealth, MenuAnswer, OrderAnswer, OutcomeAnswer


def _id() -> str:
    return secrets.token_urlsafe(24)


def _card(target: Target, serial: str | None = None) -> dict[str, str]:
    return {"card_serial": serial or target.card_serial, "applied_by": target.municipality}


def _order_call(target: Target, request_id: str, copies: int = 2) -> dict[str, Any]:
    order = {"municipality_code": target.municipality, "role": "jushochi", "kind": "juminhyo", "copies": copies}
    return {"request_id": request_id, "card": _card(target), "order": order, "at": target.open_at}


def _refused(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert ErrorBody.model_validate_json(answer.content).error.code == code


def test_the_server_says_which_municipalities_it_serves(target: Target) -> None:
    health = LgwanHealth.model_validate_json(target.client.get(f"{target.url}/lgwan/v1/health").content)
    assert health.status == "ok" and target.municipality in health.municipalities


def test_the_menu_of_a_card_holder_starts_with_their_municipality(target: Target) -> None:
    call = {"request_id": _id(), "card": _card(target), "at": target.open_at}
    answer = target.client.post(f"{target.url}/lgwan/v1/menu", json=call)
    assert answer.status_code == 200, answer.text
    home = MenuAnswer.model_validate_json(answer.content).menu.municipalities[0]
    assert (home.code, home.role) == (target.municipality, "jushochi")
    assert any(offer.kind == "juminhyo" and offer.available for offer in home.offers)


def test_a_serial_the_municipality_never_issued_is_not_registered(target: Target) -> None:
    call = {"request_id": _id(), "card": _card(target, "0ABC"), "at": target.open_at}
    _refused(target.client.post(f"{target.url}/lgwan/v1/menu", json=call), 403, "certificate_not_registered")


def test_a_call_that_breaks_the_contract_is_refused_as_invalid(target: Target) -> None:
    _refused(target.client.post(f"{target.url}/lgwan/v1/menu", json={"card": "?"}), 422, "invalid_request")


def test_a_municipality_the_server_does_not_serve_is_refused(target: Target) -> None:
    call = {"request_id": _id(), "card": {"card_serial": target.card_serial, "applied_by": "99999"}}
    _refused(
        target.client.post(f"{target.url}/lgwan/v1/menu", json=call | {"at": target.open_at}),
        404,
        "municipality_not_hosted",
    )


def test_an_order_is_numbered_rendered_and_signed_once_per_request_id(target: Target) -> None:
    call = _order_call(target, _id())
    first = target.client.post(f"{target.url}/lgwan/v1/orders", json=call)
    assert first.status_code == 200, first.text
    answer = OrderAnswer.model_validate_json(first.content)
    numbers = [copy.certificate_number for copy in answer.copies]
    assert numbers == answer.summary.certificate_numbers and len(set(numbers)) == 2
    for copy in answer.copies:
        assert copy.pdf.startswith(b"%PDF") and hashlib.sha256(copy.pdf).hexdigest() == copy.pdf_sha256
    again = target.client.post(f"{target.url}/lgwan/v1/orders", json=call)  # a repeated delivery
    assert again.status_code == 200 and OrderAnswer.model_validate_json(again.content) == answer
    other = _order_call(target, call["request_id"], copies=1)
    _refused(target.client.post(f"{target.url}/lgwan/v1/orders", json=other), 409, "request_id_reused")


def test_the_outcome_of_an_order_is_recorded_and_an_unknown_one_refused(target: Target) -> None:
    call = _order_call(target, _id())
    ordered = OrderAnswer.model_validate_json(target.client.post(f"{target.url}/lgwan/v1/orders", json=call).content)
    printed, failed = ordered.summary.certificate_numbers
    outcome = {"request_id": _id(), "order_request_id": call["request_id"], "at": target.open_at}
    partly = target.client.post(
        f"{target.url}/lgwan/v1/outcomes", json=outcome | {"issued": [printed], "withdrawn": [failed]}
    )
    assert partly.status_code == 200 and OutcomeAnswer.model_validate_json(partly.content).outcome == "partly"
    late = target.client.post(  # the kiosk's late word: nothing printed after all
        f"{target.url}/lgwan/v1/outcomes", json=outcome | {"request_id": _id(), "withdrawn": [printed, failed]}
    )
    assert OutcomeAnswer.model_validate_json(late.content).outcome == "withdrawn"
    wrong = outcome | {"request_id": _id(), "issued": ["00000-99999999"]}
    _refused(target.client.post(f"{target.url}/lgwan/v1/outcomes", json=wrong), 409, "outcome_mismatch")
    unknown = outcome | {"request_id": _id(), "order_request_id": _id(), "issued": [printed]}
    _refused(target.client.post(f"{target.url}/lgwan/v1/outcomes", json=unknown), 404, "order_unknown")
