"""docs/api.md against the code: the endpoints it describes are the ones the OpenAPI document
publishes, and its error table is the codes the service sends, each with its status.

What counts in the doc: an endpoint written in backticks (`POST /api/v1/transactions`,
path parameters by any name), and the backticked codes in the code column of the table
under "## Errors".
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import api_support
import pytest
from api_support import Service

from certserver.api.errors import CARD_CODES, CODE_BY_HTTP_STATUS, NOT_SENT
from certserver.refusals import MESSAGES

pki = api_support.pki  # fixtures
service = api_support.service

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
OPENAPI = "/api/v1/openapi.json"
ENDPOINT = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s]*)`")
ERROR_ROW = re.compile(r"^\| (\d{3}) \| ([^|]*) \|", re.MULTILINE)


def _normal(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def documented_endpoints(text: str) -> set[tuple[str, str]]:
    return {(method, _normal(path)) for method, path in ENDPOINT.findall(text)}


def documented_errors(text: str) -> dict[str, int]:
    """code -> HTTP status, from the table under "## Errors". Raises AssertionError when a
    code is listed under two statuses."""
    section = text.split("\n## Errors", 1)[1].split("\n## ", 1)[0]
    codes: dict[str, int] = {}
    for status, cell in ERROR_ROW.findall(section):
        for code in re.findall(r"`([a-z0-9_]+)`", cell):
            assert codes.setdefault(code, int(status)) == int(status), f"{code} under two statuses"
    return codes


def published_endpoints(document: dict[str, Any]) -> set[tuple[str, str]]:
    operations = {(m.upper(), _normal(path)) for path, ops in document["paths"].items() for m in ops}
    return operations | {("GET", OPENAPI)}  # the document itself


def published_errors(document: dict[str, Any]) -> dict[str, int]:
    """code -> HTTP status: what the routes declare, and what the service answers for any
    path (no such route, wrong method, a body too large ...)."""
    codes = {code: status for status, code in CODE_BY_HTTP_STATUS.items()}
    for operations in document["paths"].values():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                for code in response.get("x-error-codes", []):
                    assert codes.setdefault(code, int(status)) == int(status), f"{code} under two statuses"
    return codes


@pytest.fixture
def document(service: Service) -> dict[str, Any]:
    with service.kiosk("K1") as kiosk:
        return kiosk.http.get(OPENAPI).json()


def test_the_doc_describes_exactly_the_published_endpoints(document: dict[str, Any]) -> None:
    documented, published = documented_endpoints(API_DOC.read_text()), published_endpoints(document)
    assert sorted(published - documented) == [], "published but not in docs/api.md"
    assert sorted(documented - published) == [], "in docs/api.md but not published"


def test_the_doc_lists_exactly_the_codes_the_service_sends_with_their_status(document: dict[str, Any]) -> None:
    documented, published = documented_errors(API_DOC.read_text()), published_errors(document)
    assert {c: s for c, s in published.items() if documented.get(c) != s} == {}, "not in the doc as sent"
    assert sorted(set(documented) - set(published)) == [], "documented but never sent"


def test_every_code_of_the_catalogue_is_documented_or_said_never_to_be_sent() -> None:
    documented = documented_errors(API_DOC.read_text())
    assert sorted(set(MESSAGES) - set(documented) - set(NOT_SENT)) == []
    assert sorted(set(NOT_SENT) & set(documented)) == []  # a confidential code is never shown
    assert sorted(set(documented) - set(MESSAGES) - set(CARD_CODES)) == []  # each has its messages
