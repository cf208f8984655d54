"""docs/lgwan.md matches the municipality server's published interface: every path both
ways, and every error code its error table lists with its status."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from certserver.centre.municipalities import refusal_of
from certserver.municipal.app import STATUS_OF_LGWAN_CODE, build_municipal_app
from certserver.pki.validation import CardCertificateError
from certserver.services.ordering import RuleViolation

DOC = (Path(__file__).resolve().parents[2] / "docs" / "lgwan.md").read_text()


def _openapi() -> dict[str, Any]:
    # The interface does not depend on the service behind it: the routes are built over none.
    return build_municipal_app(None, []).openapi()  # type: ignore[arg-type]


def _doc_paths() -> set[tuple[str, str]]:
    return {(m.group(2), m.group(1).lower()) for m in re.finditer(r"`(GET|POST) (/lgwan/v1/[a-z/]+)`", DOC)}


def _doc_errors() -> dict[str, int]:
    table = DOC[DOC.index("## Errors") :]
    errors: dict[str, int] = {}
    for status, codes in re.findall(r"^\| (\d{3}) \| ([^|]+) \|", table, flags=re.MULTILINE):
        for code in re.findall(r"`([a-z_]+)`", codes):
            errors[code] = int(status)
    return errors


def test_every_path_of_the_interface_is_documented_and_every_documented_path_exists() -> None:
    served = {(path, method) for path, item in _openapi()["paths"].items() for method in item}
    assert served - {("/lgwan/v1/openapi.json", "get")} == _doc_paths()


def test_every_refusal_of_the_server_is_in_the_error_table_with_its_status() -> None:
    documented = _doc_errors()
    for code, status in STATUS_OF_LGWAN_CODE.items():
        assert documented.get(code) == status, code


@pytest.mark.parametrize(
    ("status", "code", "taken_as"),
    [
        (403, "certificate_not_registered", CardCertificateError),
        (422, "outside_hours", RuleViolation),
        (422, "not_available_at_kiosk", RuleViolation),
    ],
)
def test_the_centre_takes_a_documented_refusal_as_the_table_says(status: int, code: str, taken_as: type) -> None:
    assert _doc_errors()[code] == status
    assert isinstance(refusal_of(status, code, "", ""), taken_as)


@pytest.mark.parametrize("code", ["request_in_progress", "request_id_reused", "invalid_request", "internal_error"])
def test_a_refusal_of_the_call_itself_ends_the_transaction_as_the_municipality_unavailable(code: str) -> None:
    refusal = refusal_of(_doc_errors()[code], code, "", "")
    assert getattr(refusal, "code", None) == "municipality_unavailable"
