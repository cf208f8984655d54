"""The kiosk API against its own OpenAPI document, fuzzed over real HTTP (openapi_fuzz):
no request, valid or not, gets a 5xx or an answer the document does not declare.

Random ids find only "not found", so a third of the valid requests on a transaction are
sent to a live transaction instead, in each step of the visit (started, authenticated,
ordered, paid, released), by that transaction's kiosk; a fuzzed step that ends it (cancel,
a failed authentication) makes the next request of that step start a new one.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import api_support
from api_support import JUMINHYO_FEE, MUNICIPALITY, Card, KioskClient, Service
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from openapi_fuzz import fuzz_app, fuzz_openapi
from pydantic import BaseModel

from certserver.services.kiosks import KioskCredential

pki = api_support.pki  # fixtures
service = api_support.service

# Per database (SQLite and PostgreSQL each get one run); a longer run by hand: docs/api.md.
MAX_EXAMPLES = int(os.environ.get("KONBINI_FUZZ_EXAMPLES", "30"))  # per operation and mode
BUDGET_SECONDS = float(os.environ.get("KONBINI_FUZZ_SECONDS", "25"))
STEPS = ("started", "authenticated", "ordered", "paid", "released")
# What a random order lacks to pass the rules; its number of copies stays as generated.
ORDERABLE = {"municipality_code": MUNICIPALITY, "role": "jushochi", "kind": "juminhyo", "person_ids": [], "options": []}
ORDERABLE |= {"whole_household": False, "fiscal_year": None}


class LiveTransactions:
    """One kiosk per step of the visit, each holding one transaction in that step."""

    def __init__(self, service: Service, card: Card) -> None:
        self.service, self.card = service, card
        self.kiosks: dict[str, KioskCredential] = {step: service.add_kiosk(f"FUZZ-{step}") for step in STEPS}
        self.open: dict[str, tuple[str, list[str]]] = {}  # step -> (transaction id, document ids)
        self.rebuilt = 0

    def in_step(self, step: str) -> tuple[str, list[str], str]:
        """(transaction id, document ids, bearer credential) of a transaction now in `step`."""
        credential = self.kiosks[step]
        with KioskClient(self.service.url, credential) as kiosk:
            held = self.open.get(step)
            if held is None or kiosk.status(held[0]).json().get("state") != step:
                held = self._build(kiosk, step)
                self.open[step] = held
        return held[0], held[1], credential.bearer

    def _build(self, kiosk: KioskClient, step: str) -> tuple[str, list[str]]:
        self.rebuilt += 1
        if step == "started":
            started = kiosk.start()
            assert started.status_code == 201, started.text
            return started.json()["transaction_id"], []
        tx_id, _ = kiosk.authenticated(self.card)
        if step == "authenticated":
            return tx_id, []
        ordered = kiosk.order(tx_id)
        assert ordered.status_code == 200, ordered.text
        if step == "ordered":
            return tx_id, []
        assert kiosk.pay(tx_id, ordered.json()["fee_total_yen"]).status_code == 200
        if step == "paid":
            return tx_id, []
        listed = kiosk.documents(tx_id)  # released now
        assert listed.status_code == 200, listed.text
        return tx_id, [d["document_id"] for d in listed.json()["documents"]]


def live_ids(transactions: LiveTransactions) -> Any:
    """The fuzzer's hook: in turn, leave a valid case as generated (twice) or send it to a
    live transaction of the next step, with that transaction's kiosk and documents; an
    order sent to an authenticated one names what the card holder may order, a payment
    sent to an ordered one pays its fee, so that those succeed too."""
    turns = itertools.cycle((None, None, *STEPS))

    def prepare(case: Any) -> dict[str, str] | None:
        if "transaction_id" not in case.path_parameters:
            return None
        step = next(turns)
        if step is None:
            return None
        tx_id, documents, bearer = transactions.in_step(step)
        case.path_parameters["transaction_id"] = tx_id
        if "document_id" in case.path_parameters and documents:
            case.path_parameters["document_id"] = documents[0]
        if isinstance(case.body, dict) and (step, case.operation.path.rsplit("/", 1)[1]) == ("authenticated", "order"):
            case.body.update(ORDERABLE)
        if isinstance(case.body, dict) and (step, case.operation.path.rsplit("/", 1)[1]) == ("ordered", "payment"):
            case.body["amount_yen"] = JUMINHYO_FEE  # the one copy LiveTransactions orders
        return {"Authorization": bearer}

    return prepare


def test_the_fuzzer_finds_no_server_error_and_no_answer_outside_the_document(service: Service) -> None:
    credential = service.add_kiosk("FUZZ-1")
    transactions = LiveTransactions(service, service.pki.cards["toride-000"])
    report = fuzz_openapi(
        service.url,
        "/api/v1/openapi.json",
        headers={"Authorization": credential.bearer},
        max_examples=MAX_EXAMPLES,
        budget_seconds=BUDGET_SECONDS,
        prepare=live_ids(transactions),
    )
    print(f"\n{report.cases} requests in {report.seconds:.1f} s, {transactions.rebuilt} live transactions built")
    for operation, statuses in sorted(report.statuses.items()):
        print(f"  {operation} {dict(sorted(statuses.items()))}")
    assert report.failures == [], "\n".join(report.failures)
    assert report.seconds < BUDGET_SECONDS + 15
    # It went past the credential and the ids: every step of a visit answered with success.
    reached = {op for op, statuses in report.statuses.items() if any(200 <= s < 300 for s in statuses)}
    assert {
        "POST /api/v1/transactions",
        "GET /api/v1/transactions/{transaction_id}",
        "GET /api/v1/transactions/{transaction_id}/menu",
        "GET /api/v1/transactions/{transaction_id}/documents",
        "GET /api/v1/transactions/{transaction_id}/documents/{document_id}",
        "POST /api/v1/transactions/{transaction_id}/order",
        "POST /api/v1/transactions/{transaction_id}/payment",
        "POST /api/v1/transactions/{transaction_id}/cancel",
    } <= reached, sorted(reached)


def test_the_fuzzer_reports_a_server_error_and_an_answer_outside_the_document() -> None:
    """The fuzzer itself, on a small API it knows nothing about: a 500 for some input and
    an answer of another shape than declared are both reported, once each, with the curl
    command that repeats them; the declared answers are not."""
    app = FastAPI(openapi_url="/openapi.json")

    class Count(BaseModel):
        count: int

    @app.get("/divide/{number}", response_model=Count)
    def divide(number: int) -> Any:
        return {"count": 100 // (number % 3)}  # a multiple of 3: ZeroDivisionError, a 500

    @app.get("/count", response_model=Count)
    def count() -> Any:
        return JSONResponse({"count": "many"})  # not the declared integer

    report = fuzz_app(app, "/openapi.json", max_examples=30, budget_seconds=20)
    assert report.cases > 0
    failures = "\n".join(report.failures)
    assert "GET /divide/{number} [positive] -> 500" in failures, failures
    assert "GET /count [positive] -> 200: Response violates schema" in failures, failures
    assert "curl -X GET" in failures
    assert len(report.failures) == 2, failures
