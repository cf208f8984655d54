"""`kiosk scenario FILE.toml`: visits with expected outcomes, run one after another against a
service by the headless kiosk; passes only when every visit ends as expected.

    cards = "var/demo/cards"          # optional: the demo card folder (else --cards), relative to the file

    [[visit]]
    name = "住民票の写し, paid with a 1000-yen note"
    card = "toride-0001"              # a resident id of the card index, or a card file
    certificate = "juminhyo"          # the rest as `kiosk simulate`: persons, options, copies,
    pay = 1000                        # municipality (jushochi | honsekichi), pin (else the index's)
    expect = { status = "issued", documents = 1, change = 800 }   # 取手市's demo fee: 200 yen

    [[visit]]
    card = "toride-0030"
    expect = { status = "error", code = "resident_moved_out" }

`expect` may name status, code (the rule or failure code), fee, paid, change, documents (a
count) and tries_left; what it does not name is not checked, except the status: without one
it is "error" when a code is named and "issued" otherwise, so a visit that expects nothing
still fails when the service is down. The PIN a file gives is test data of a synthetic card,
like the card index's.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.democards import DemoIndexError, read_index
from kiosk.driver import VisitResult, VisitScript
from kiosk.junit import JunitCase

EXPECTABLE = {
    "status": "status",
    "code": "error_code",
    "fee": "fee",
    "paid": "paid",
    "change": "change",
    "tries_left": "tries_left",
}
VISIT_KEYS = {"name", "card", "certificate", "persons", "options", "copies", "pay", "municipality", "pin", "expect"}


class ScenarioError(Exception):
    """A scenario file that cannot be run (one line for the user)."""


@dataclass(frozen=True)
class PlannedVisit:
    name: str
    card: Path
    script: VisitScript
    expect: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VisitOutcome:
    visit: PlannedVisit
    result: VisitResult
    seconds: float
    mismatches: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.mismatches


def _cards(data: dict[str, Any], base: Path, cards_dir: Path | None) -> dict[str, tuple[Path, str]]:
    folder = cards_dir or (base / str(data["cards"]) if "cards" in data else None)
    if folder is None:
        return {}
    try:
        return {entry.resident_id: (entry.path, entry.pin) for entry in read_index(folder)}
    except DemoIndexError as exc:
        raise ScenarioError(str(exc)) from None


def _visit(number: int, item: object, base: Path, cards: dict[str, tuple[Path, str]]) -> PlannedVisit:
    where = f"visit {number}"
    if not isinstance(item, dict):
        raise ScenarioError(f"{where} is not a table")
    unknown = set(item) - VISIT_KEYS
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    card = str(item.get("card", ""))
    if card in cards:
        path, pin = cards[card]
    elif card.endswith(".json"):
        path, pin = base / card, ""
    else:
        raise ScenarioError(f"{where}: card {card!r} is neither in the card index nor a card file (.json)")
    pin = str(item.get("pin", pin))
    if not pin:
        raise ScenarioError(f"{where}: no PIN for card {card!r} (give pin = ... or use the card index)")
    expect = item.get("expect", {})
    if not isinstance(expect, dict) or set(expect) - {*EXPECTABLE, "documents"}:
        raise ScenarioError(f"{where}: expect may name {', '.join([*EXPECTABLE, 'documents'])} only")
    expect = {"status": "error" if "code" in expect else "issued", **expect}
    options = item.get("options", ())
    try:
        script = VisitScript(
            pin=pin,
            certificate=str(item.get("certificate", "juminhyo")),
            municipality_role=str(item.get("municipality", "jushochi")),
            persons=str(item.get("persons", "self")),
            options=tuple(str(o) for o in (options.split(",") if isinstance(options, str) else options) if o),
            copies=int(item.get("copies", 1)),
            pay_yen=None if item.get("pay") is None else int(item["pay"]),
        )
    except (TypeError, ValueError):
        raise ScenarioError(f"{where}: copies and pay must be whole numbers") from None
    return PlannedVisit(str(item.get("name", f"{where}: {card} {script.certificate}")), path, script, expect)


def load_scenario(path: Path, *, cards_dir: Path | None = None) -> list[PlannedVisit]:
    """The visits of a scenario file. Raises ScenarioError."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path} is not TOML: {str(exc).splitlines()[0]}") from None
    visits = data.get("visit")
    if not isinstance(visits, list) or not visits:
        raise ScenarioError(f"{path} has no [[visit]]")
    base = Path(path).parent
    cards = _cards(data, base, cards_dir)
    return [_visit(number, item, base, cards) for number, item in enumerate(visits, 1)]


def mismatches(expect: dict[str, Any], result: VisitResult) -> tuple[str, ...]:
    """What differs from the expectation, as one phrase each."""
    found = []
    for key, attribute in EXPECTABLE.items():
        if key in expect and getattr(result, attribute) != expect[key]:
            found.append(f"{key}: expected {expect[key]!r}, got {getattr(result, attribute)!r}")
    if "documents" in expect and len(result.documents) != expect["documents"]:
        found.append(f"documents: expected {expect['documents']}, got {len(result.documents)}")
    return tuple(found)


def run_scenario(visits: list[PlannedVisit], run_visit: Callable[[PlannedVisit], VisitResult]) -> list[VisitOutcome]:
    """Run each visit with `run_visit` and compare its result with the expectation."""
    outcomes = []
    for visit in visits:
        began = time.monotonic()
        result = run_visit(visit)
        outcomes.append(VisitOutcome(visit, result, time.monotonic() - began, mismatches(visit.expect, result)))
    return outcomes


def junit_cases(outcomes: list[VisitOutcome]) -> list[JunitCase]:
    return [
        JunitCase(o.visit.name, "kiosk.scenario", o.seconds, None if o.passed else "; ".join(o.mismatches))
        for o in outcomes
    ]
