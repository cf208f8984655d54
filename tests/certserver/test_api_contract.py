"""The kiosk API's contract (kioskapi.models) is what the service answers and what its
OpenAPI document declares, and the kiosk reads the answers with the very same types."""

from __future__ import annotations

from typing import Any

import api_support
import pytest
from api_support import JUMINHYO_FEE, Service
from pydantic import BaseModel

from certserver.services.ordering import menu_for
from kiosk.client import ClientSettings, ServiceClient, ServiceError, parse_menu
from kioskapi import models as contract

pki = api_support.pki  # fixtures
service = api_support.service

KIOSK_ANSWERS = {  # (path, method): (status, the contract's model of the answer)
    ("/api/v1/transactions", "post"): ("201", "StartedResponse"),
    ("/api/v1/transactions/{transaction_id}", "get"): ("200", "TransactionStatus"),
    ("/api/v1/transactions/{transaction_id}/authenticate", "post"): ("200", "AuthenticatedResponse"),
    ("/api/v1/transactions/{transaction_id}/menu", "get"): ("200", "MenuResponse"),
    ("/api/v1/transactions/{transaction_id}/order", "post"): ("200", "OrderedResponse"),
    ("/api/v1/transactions/{transaction_id}/payment", "post"): ("200", "TransactionStatus"),
    ("/api/v1/transactions/{transaction_id}/documents", "get"): ("200", "DocumentList"),
    ("/api/v1/transactions/{transaction_id}/printed", "post"): ("200", "TransactionStatus"),
    ("/api/v1/transactions/{transaction_id}/cancel", "post"): ("200", "TransactionStatus"),
}


def _schema_ref(response: dict[str, Any]) -> str:
    return response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]


def _is_exactly(model: type[BaseModel], body: dict[str, Any]) -> bool:
    """The body reads as the contract's model and the model writes it back unchanged:
    no field missing, none extra, none of another type."""
    # Only an error's optional `fields` may be absent (a request-shape error has them).
    return model.model_validate(body).model_dump(mode="json", exclude_none=model is contract.ErrorBody) == body


def test_the_openapi_document_declares_every_kiosk_answer_and_the_error_body(service: Service) -> None:
    with service.kiosk("K1") as kiosk:
        document = kiosk.http.get("/api/v1/openapi.json").json()
    for (path, method), (status, model) in KIOSK_ANSWERS.items():
        responses = document["paths"][path][method]["responses"]
        assert _schema_ref(responses[status]) == model, (path, method)
        for error_status in ("401", "404", "409", "422", "500"):
            assert _schema_ref(responses[error_status]) == "ErrorBody", (path, method, error_status)
    schemas = document["components"]["schemas"]
    assert "code" in schemas["ErrorDetail"]["required"]
    # The service always sends every field of an answer, so the document requires them all.
    assert set(schemas["Offer"]["required"]) == set(schemas["Offer"]["properties"])
    assert set(schemas["OrderSummary"]["required"]) == set(schemas["OrderSummary"]["properties"])
    assert "resident_id" in schemas["Menu"]["required"]


def test_every_answer_of_a_visit_is_exactly_the_contract(service: Service) -> None:
    card = service.pki.cards["toride-000"]
    with service.kiosk("K1") as kiosk:
        started = kiosk.start().json()
        assert _is_exactly(contract.StartedResponse, started)
        tx_id = started["transaction_id"]
        authenticated = kiosk.authenticate(tx_id, card, started["challenge"]).json()
        assert _is_exactly(contract.AuthenticatedResponse, authenticated)
        assert _is_exactly(contract.MenuResponse, kiosk.http.get(f"/api/v1/transactions/{tx_id}/menu").json())
        refused = kiosk.order(tx_id, copies=99)
        assert refused.status_code == 422 and _is_exactly(contract.ErrorBody, refused.json())
        ordered = kiosk.order(tx_id, copies=2, options=["setainushi"]).json()
        assert _is_exactly(contract.OrderedResponse, ordered)
        assert _is_exactly(contract.TransactionStatus, kiosk.status(tx_id).json())
        assert _is_exactly(contract.TransactionStatus, kiosk.pay(tx_id, 2 * JUMINHYO_FEE).json())
        assert _is_exactly(contract.DocumentList, kiosk.documents(tx_id).json())
        kiosk.download_all(tx_id)
        assert _is_exactly(contract.TransactionStatus, kiosk.printed(tx_id).json())
        assert _is_exactly(contract.ErrorBody, kiosk.http.get("/api/v1/no-such-route").json())


def test_the_kiosk_reads_the_menu_as_the_very_value_the_rules_built(service: Service) -> None:
    """One type on both sides: the menu the kiosk's client returns is the contract's Menu
    and equals what the service's rules built for the card holder."""
    card = service.pki.cards["toride-000"]
    credential = service.add_kiosk("K2")
    with ServiceClient(ClientSettings(service.url, credential.kiosk_id, credential.secret)) as client:
        started = client.start_transaction()
        menu = client.authenticate(started.transaction_id, card.der, card.sign(started.challenge))
    with service.factory() as session:
        built = menu_for(session, "toride-000", service.clock())
    assert isinstance(menu, contract.Menu)
    assert menu == built


@pytest.mark.parametrize(
    "field, value",
    [
        ("fee_yen", 200.5),  # a fee is whole yen: 200.5 must not become 200
        ("kind", 7),
        ("persons", [{"person_id": 7, "name": "取手　太郎", "relationship": "本人", "is_requester": True}]),
        ("unavailable_reason", ["outside_hours"]),
    ],
)
def test_a_menu_that_does_not_fit_the_contract_is_a_bad_response(field: str, value: object) -> None:
    offer = {"kind": "juminhyo", "fee_yen": 200, "max_copies": 5, field: value}
    raw = {
        "municipalities": [
            {
                "code": "08217",
                "name": "取手市",
                "role": "jushochi",
                "open": True,
                "closed_reason": None,
                "offers": [offer],
            }
        ]
    }
    with pytest.raises(ServiceError) as refused:
        parse_menu(raw)
    assert refused.value.code == "bad_response"
    assert "取手" not in str(refused.value)  # the message names what it was, never the values


def test_the_kiosk_sends_its_order_as_the_contract_writes_it() -> None:
    order = contract.Order(
        municipality_code="08217",
        role=contract.MunicipalityRole.JUSHOCHI,
        kind=contract.CertificateKind.JUMINHYO,
        options=frozenset({"setainushi", "honseki"}),
    )
    assert order.model_dump(mode="json") == {
        "municipality_code": "08217",
        "role": "jushochi",
        "kind": "juminhyo",
        "person_ids": [],
        "whole_household": False,
        "options": ["honseki", "setainushi"],
        "copies": 1,
        "fiscal_year": None,
    }
