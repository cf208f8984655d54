"""Bad input of every shape gets a stable 4xx error body, never a 500 or a traceback."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import api_support
import httpx
import pytest
from api_support import Service, error_code
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pki = api_support.pki  # fixtures
service = api_support.service

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=10,
)


@pytest.fixture
def authed(service: Service) -> tuple[httpx.Client, str]:
    kiosk = service.kiosk()
    tx_id, _ = kiosk.authenticated(service.pki.cards["toride-000"])
    return kiosk.http, tx_id


def test_garbage_json_is_an_invalid_request(service: Service, authed: tuple[httpx.Client, str]) -> None:
    http, tx_id = authed
    for raw in (b"{", b"not json", b"\xff\xfe\x00", b"[1,2", b"", b"null", b"[]", b'"text"'):
        answer = http.post(
            f"/api/v1/transactions/{tx_id}/order", content=raw, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 422, raw
        assert error_code(answer) == "invalid_request"


BAD_ORDER_FIELDS = [
    {"copies": "2"},
    {"copies": 2.5},
    {"copies": True},
    {"copies": 0},
    {"copies": -1},
    {"copies": 10**30},
    {"whole_household": "yes"},
    {"person_ids": "toride-000"},
    {"person_ids": [1, 2]},
    {"person_ids": ["x" * 1000]},
    {"options": [None]},
    {"kind": "passport"},
    {"role": "anywhere"},
    {"municipality_code": 8217},
    {"municipality_code": "08217; DROP TABLE residents"},
    {"fiscal_year": -5},
    {"fiscal_year": 10**20},
    {"unexpected": 1},
]


def test_wrong_types_and_huge_numbers_in_an_order_are_invalid_requests(authed: tuple[httpx.Client, str]) -> None:
    http, tx_id = authed
    for change in BAD_ORDER_FIELDS:
        body = {"municipality_code": "08217", "role": "jushochi", "kind": "juminhyo", **change}
        answer = http.post(f"/api/v1/transactions/{tx_id}/order", json=body)
        assert answer.status_code == 422, change
        assert error_code(answer) == "invalid_request"
        assert "fields" in answer.json()["error"]
    # The refusals changed nothing: a good order still goes through.
    assert (
        http.post(
            f"/api/v1/transactions/{tx_id}/order",
            json={"municipality_code": "08217", "role": "jushochi", "kind": "juminhyo"},
        ).status_code
        == 200
    )


def test_a_payment_with_a_huge_or_wrong_amount_is_refused(service: Service) -> None:
    with service.kiosk() as kiosk:
        tx_id, _ = kiosk.authenticated(service.pki.cards["toride-000"])
        kiosk.order(tx_id)
        for amount in (10**40, -1, "200", 200.0, None):
            answer = kiosk.http.post(f"/api/v1/transactions/{tx_id}/payment", json={"amount_yen": amount})
            assert answer.status_code == 422, amount
            assert error_code(answer) == "invalid_request"


def test_undecodable_or_malformed_card_data_is_refused_cleanly(service: Service) -> None:
    with service.kiosk() as kiosk:
        started = kiosk.start().json()
        bad_base64 = kiosk.http.post(
            f"/api/v1/transactions/{started['transaction_id']}/authenticate",
            json={"certificate": "@@@@", "signature": "AAAA"},
        )
        assert error_code(bad_base64) == "invalid_request"
        not_a_cert = kiosk.http.post(
            f"/api/v1/transactions/{started['transaction_id']}/authenticate",
            json={
                "certificate": base64.b64encode(b"\x30\x03\x02\x01\x01").decode(),
                "signature": base64.b64encode(b"\x00" * 256).decode(),
            },
        )
        assert not_a_cert.status_code in (403, 422)
        assert error_code(not_a_cert) in ("certificate_malformed", "signature_invalid")


def test_an_oversized_body_is_refused_before_parsing(service: Service) -> None:
    with service.kiosk() as kiosk:
        tx_id = kiosk.start().json()["transaction_id"]
        answer = kiosk.http.post(
            f"/api/v1/transactions/{tx_id}/authenticate",
            content=b'{"certificate":"' + b"A" * 200_000 + b'"}',
            headers={"Content-Type": "application/json"},
        )
        assert answer.status_code == 413
        assert error_code(answer) == "payload_too_large"


def test_unknown_paths_methods_and_malformed_ids_are_plain_client_errors(service: Service) -> None:
    with service.kiosk() as kiosk:
        assert error_code(kiosk.http.get("/api/v1/nothing-here")) == "not_found"
        assert error_code(kiosk.http.get("/api/v1/transactions")) == "method_not_allowed"
        for bad_id in ("x", "../../etc/passwd", "%00" * 5, "a" * 200):
            answer = kiosk.http.get(f"/api/v1/transactions/{bad_id}")
            assert answer.status_code in (404, 422), bad_id
            assert error_code(answer) in ("not_found", "invalid_request")
        too_long_key = kiosk.start(headers={"Idempotency-Key": "k" * 500})
        assert error_code(too_long_key) == "invalid_request"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=JSON_VALUES)
def test_no_json_body_whatever_makes_the_server_fail(authed: tuple[httpx.Client, str], body: object) -> None:
    http, tx_id = authed
    for step in ("order", "payment", "authenticate"):
        answer = http.post(
            f"/api/v1/transactions/{tx_id}/{step}",
            content=json.dumps(body),
            headers={"Content-Type": "application/json"},
        )
        assert answer.status_code < 500, (step, body, answer.text)
        assert "error" in answer.json() or answer.status_code == 200


def test_an_oversized_chunked_body_without_content_length_gets_413(service: Service) -> None:
    """A body sent chunked (no Content-Length) is counted as it arrives: past 64 KiB the
    answer is the documented 413, as for a declared length."""

    def chunks() -> Iterator[bytes]:
        yield b'{"certificate":"'
        for _ in range(20):
            yield b"A" * 10_000
        yield b'"}'

    with service.kiosk() as kiosk:
        tx_id = kiosk.start().json()["transaction_id"]
        answer = kiosk.http.post(
            f"/api/v1/transactions/{tx_id}/authenticate", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert answer.request.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in answer.request.headers
        assert answer.status_code == 413
        assert error_code(answer) == "payload_too_large"
