"""The kiosk API's contract (kioskapi.models) is what the service answers and what its
OpenAPI document declares, and the kiosk reads the answers with the very same types."""

from __future__ import annotations

import datetime as dt
from typing import Any

import api_support
import httpx
import pytest
from api_support import JUMINHYO_FEE, Service, error_code
from pydantic import BaseModel

from certserver.services.ordering import menu_for
from kiosk.client import ClientSettings, ServiceClient, ServiceError, parse_menu
from kioskapi import models as contract

pki = api_support.pki  # fixtures
service = api_support.service

# Every status a kiosk call may be refused with: the credential (401), the request's shape
# (422), its size (413) and a bug (500), plus what the step itself may refuse.
CALL = {"401", "413", "422", "500"}
LOADED = CALL | {"404", "409", "410"}  # a step on a transaction: not found, ended, expired
KIOSK_ANSWERS = {  # (path, method): (status, the contract's model of the answer, the error statuses)
    ("/api/v1/health", "get"): ("200", "Health", {"413", "500"}),
    ("/api/v1/transactions", "post"): ("201", "StartedResponse", CALL | {"409"}),
    ("/api/v1/transactions/{transaction_id}", "get"): ("200", "TransactionStatus", LOADED),
    ("/api/v1/transactions/{transaction_id}/authenticate", "post"): (
        "200",
        "AuthenticatedResponse",
        LOADED | {"403", "503"},
    ),
    ("/api/v1/transactions/{transaction_id}/menu", "get"): ("200", "MenuResponse", LOADED | {"503"}),
    ("/api/v1/transactions/{transaction_id}/order", "post"): ("200", "OrderedResponse", LOADED | {"503"}),
    ("/api/v1/transactions/{transaction_id}/payment", "post"): ("200", "TransactionStatus", LOADED | {"403"}),
    ("/api/v1/transactions/{transaction_id}/documents", "get"): ("200", "DocumentList", LOADED | {"403"}),
    ("/api/v1/transactions/{transaction_id}/printed", "post"): ("200", "TransactionStatus", LOADED),
    ("/api/v1/transactions/{transaction_id}/cancel", "post"): ("200", "TransactionStatus", LOADED),
}
PUBLIC_ERRORS = {  # (path, method): the error statuses of the public PKI and verification endpoints
    ("/pki/ca/{purpose}.crt", "get"): {"404", "422", "500", "503"},
    ("/pki/crl/{purpose}.crl", "get"): {"404", "422", "500", "503"},
    ("/pki/ocsp", "post"): {"413", "415", "500", "503"},
    ("/pki/ocsp/{encoded}", "get"): {"404", "414", "422", "500", "503"},
    ("/verify/pdf", "post"): {"413", "500", "503"},
    ("/verify/qr", "post"): {"422", "500", "503"},
}


def _schema_ref(response: dict[str, Any]) -> str:
    return response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]


def _is_exactly(model: type[BaseModel], body: dict[str, Any]) -> bool:
    """The body reads as the contract's model and the model writes it back unchanged:
    no field missing, none extra, none of another type."""
    # Only an error's optional `fields` may be absent (a request-shape error has them).
    return model.model_validate(body).model_dump(mode="json", exclude_none=model is contract.ErrorBody) == body


def _error_statuses(responses: dict[str, Any]) -> set[str]:
    errors = {status for status in responses if not status.startswith("2")}
    for status in errors:
        assert _schema_ref(responses[status]) == "ErrorBody", status
        assert responses[status]["x-error-codes"], status  # each names the codes it carries
    return errors


def test_the_openapi_document_declares_every_answer_and_every_error_status(service: Service) -> None:
    """Each route declares its answer's model and exactly the error statuses it may
    return, each with the contract's one error body."""
    with service.kiosk("K1") as kiosk:
        document = kiosk.http.get("/api/v1/openapi.json").json()
    for (path, method), (status, model, errors) in KIOSK_ANSWERS.items():
        responses = document["paths"][path][method]["responses"]
        assert _schema_ref(responses[status]) == model, (path, method)
        assert _error_statuses(responses) == errors, (path, method)
        credential = [] if path == "/api/v1/health" else [{"kioskBearer": []}]
        assert document["paths"][path][method].get("security", []) == credential, (path, method)
    pdf = document["paths"]["/api/v1/transactions/{transaction_id}/documents/{document_id}"]["get"]["responses"]
    assert set(pdf["200"]["content"]) == {"application/pdf"}
    assert _error_statuses(pdf) == LOADED | {"403"}
    for (path, method), errors in PUBLIC_ERRORS.items():
        assert _error_statuses(document["paths"][path][method]["responses"]) == errors, (path, method)
    assert document["components"]["securitySchemes"]["kioskBearer"]["scheme"] == "bearer"
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas  # FastAPI's own 422 body is never sent
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


def test_the_public_endpoints_refuse_with_the_catalogue_codes(service: Service) -> None:
    """An HTTP error raised by a PKI or verification route carries the code the document
    declares for its status (it was `http_415`, `http_414` ...: codes no document named)."""
    with httpx.Client(base_url=service.url, timeout=30) as http:
        media = http.post("/pki/ocsp", content=b"\x30\x00", headers={"content-type": "text/plain"})
        address = http.get("/pki/ocsp/" + "A" * 33_000)
        size = http.post("/verify/pdf", content=b"0" * (5 * 1024 * 1024 + 1))
        no_ca = http.get("/pki/ca/nobody.crt")
        line_break = http.get("/pki/ocsp/MEMw%0AQTA")  # no route matches a line break (the fuzzer found it)
    assert (media.status_code, error_code(media)) == (415, "unsupported_media_type")
    assert (address.status_code, error_code(address)) == (414, "uri_too_long")
    assert (size.status_code, error_code(size)) == (413, "payload_too_large")
    assert (no_ca.status_code, error_code(no_ca)) == (404, "not_found")
    assert (line_break.status_code, error_code(line_break)) == (404, "not_found")
    for answer in (media, address, size, no_ca, line_break):
        assert _is_exactly(contract.ErrorBody, answer.json())


def test_every_time_in_an_answer_carries_its_offset(service: Service) -> None:
    """`expires_at` is an RFC 3339 date-time with its offset in every answer, also when read
    back from the database (SQLite returned it naive: "2026-12-08T01:10:00", which the
    document's `date-time` format refuses; the fuzzer found it)."""
    with service.kiosk("K1") as kiosk:
        started = kiosk.start().json()
        status = kiosk.status(started["transaction_id"]).json()
        cancelled = kiosk.cancel(started["transaction_id"]).json()
    times = [started["expires_at"], status["expires_at"], cancelled["expires_at"]]
    for text in times:
        assert dt.datetime.fromisoformat(text).utcoffset() == dt.timedelta(0), text
    assert len({dt.datetime.fromisoformat(text) for text in times}) == 1
