"""The LGWAN interface of a municipality's certificate server against its own OpenAPI
document, fuzzed over real HTTP (openapi_fuzz): no call, valid or not, gets a 5xx or an
answer the document does not declare.

The server runs on plain HTTP here: the mutual TLS in front of it is the link's, tested in
test_lgwan_tls and test_lgwan_link; this is the contract behind it. Random municipality codes find
only "not hosted", so a third of the valid calls name a real card of the municipality (half
of those at an hour it is open) and a third a serial it never issued.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import api_support
from api_support import MUNICIPALITY, Pki
from openapi_fuzz import fuzz_app

from certserver.app import create_municipal_app
from certserver.db.session import make_engine, make_session_factory, transaction

pki = api_support.pki  # fixture

MAX_EXAMPLES = int(os.environ.get("KONBINI_FUZZ_EXAMPLES", "30"))  # per operation and mode
BUDGET_SECONDS = float(os.environ.get("KONBINI_FUZZ_SECONDS", "20"))
OPEN_HOUR = "2026-12-07T10:30:00+09:00"  # a Monday inside the demo municipality's hours
ORDERABLE = {"municipality_code": MUNICIPALITY, "role": "jushochi", "kind": "juminhyo", "person_ids": []}
ORDERABLE |= {"options": [], "whole_household": False, "fiscal_year": None}


def _real_cards(pki: Pki) -> Any:
    def prepare(case: Any) -> dict[str, str] | None:
        turn = next(turns)
        if turn % 3 == 0 or not isinstance(case.body, dict):
            return None
        if turn % 3 == 2:  # a serial the municipality never issued
            case.body["card"] = {"card_serial": "0ABC", "applied_by": MUNICIPALITY}
            return None
        card = pki.cards[f"toride-{(turn // 3) % 12:02d}0"]
        case.body["card"] = {"card_serial": card.serial, "applied_by": MUNICIPALITY}
        if turn % 2 == 1:
            case.body["at"] = OPEN_HOUR
            if isinstance(case.body.get("order"), dict):
                case.body["order"] = {**case.body["order"], **ORDERABLE}
        return None

    turns = itertools.count()
    return prepare


def test_the_fuzzer_finds_no_server_error_and_no_answer_outside_the_lgwan_document(db_url: str, pki: Pki) -> None:
    engine = make_engine(db_url)
    with transaction(make_session_factory(engine)) as session:
        api_support.populate(session, pki)
    engine.dispose()
    app = create_municipal_app(api_support.make_settings(pki, db_url), [MUNICIPALITY])
    report = fuzz_app(
        app,
        "/lgwan/v1/openapi.json",
        max_examples=MAX_EXAMPLES,
        budget_seconds=BUDGET_SECONDS,
        prepare=_real_cards(pki),
        timeout=30.0,
    )
    print(f"\n{report.cases} calls in {report.seconds:.1f} s")  # shown with -s
    for operation, statuses in sorted(report.statuses.items()):
        print(f"  {operation} {dict(sorted(statuses.items()))}")
    assert report.failures == [], "\n".join(report.failures)
    operations = set(report.statuses)
    assert operations == {
        "GET /lgwan/v1/health",
        "POST /lgwan/v1/menu",
        "POST /lgwan/v1/orders",
        "POST /lgwan/v1/outcomes",
    }
    menu, orders = report.statuses["POST /lgwan/v1/menu"], report.statuses["POST /lgwan/v1/orders"]
    assert menu.get(200) and orders.get(200), report.statuses  # real menus and orders were made
    assert menu.get(422) and orders.get(422) and menu.get(403), report.statuses
    assert report.cases >= 100
