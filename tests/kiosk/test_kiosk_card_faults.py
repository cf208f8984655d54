"""Our own kiosk against a card that misbehaves on purpose (cardreader/virtualcard/faults.py):
every fault ends the visit on the screen that fits it, before any money is taken, with no
document issued and no PIN try lost; the next visit with the same card, now behaving, issues.

The faults are armed where they matter: those of reading the card before the visit begins,
those of the authentication once the kiosk shows the PIN pad (the step-by-step driver)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from servicekit import Service
from sqlalchemy import select

from cardreader.virtualcard import (
    CorruptedByte,
    ForcedStatus,
    LostVerification,
    PulledOut,
    RefusesPowerOn,
    SlowAnswer,
)
from cardreader.virtualcard.faults import Fault
from certserver.db.models.transactions import IssuedDocument, KioskTransaction
from kiosk import flow as f
from kiosk.card import VirtualCardReader
from kiosk.config import KioskSettings, build_devices
from kiosk.driver import Driver, VisitResult, VisitScript
from konbini_common.cardfile import CardFile

RESIDENT = "toride-0001"


@dataclass(frozen=True)
class Case:
    fault: Fault
    armed_at: str  # "start": before the card is read; "pin": on the PIN pad, before the PIN
    outcome: str  # the error code (the failure screen), or "issued"


CASES = {
    "slow answers": Case(SlowAnswer(0.005, 0.02), "start", "issued"),
    "pulled out while reading": Case(PulledOut(during=3), "start", "card_removed"),
    "pulled out during the authentication": Case(PulledOut(during=1), "pin", "card_removed"),
    "pulled out after an APDU": Case(PulledOut(after=2), "pin", "card_removed"),
    "6F00 on the signature": Case(ForcedStatus(0x6F00, "sign"), "pin", "card_unreadable"),
    "6581 memory failure on a read": Case(ForcedStatus(0x6581, "read-binary"), "start", "card_unreadable"),
    "6982 on a read that should pass": Case(ForcedStatus(0x6982, "read-binary"), "start", "card_unreadable"),
    "a corrupted certificate byte": Case(CorruptedByte("read-binary", 200), "start", "certificate_rejected"),
    "a corrupted signature byte": Case(CorruptedByte("sign", 17), "pin", "certificate_rejected"),
    "verified state lost before signing": Case(LostVerification("sign"), "pin", "card_unreadable"),
    "no answer to reset": Case(RefusesPowerOn(), "start", "card_unreadable"),
}


def make_driver(service: Service, out: Path) -> tuple[Driver, VirtualCardReader]:
    settings = KioskSettings(
        server_url=service.url, kiosk_id=service.kiosk_id, kiosk_secret=service.kiosk_secret, printer_dir=out
    )
    reader = VirtualCardReader(str(service.card(RESIDENT).path))
    return Driver(f.KioskFlow(), build_devices(settings, reader=reader).runner), reader


def visit_with_fault(driver: Driver, reader: VirtualCardReader, script: VisitScript, case: Case) -> VisitResult:
    """One visit, the fault armed at its step, through the driver's step-by-step control."""
    if case.armed_at == "start":
        reader.card.faults.add(case.fault)
    driver.begin()
    if case.armed_at == "pin":
        assert driver.flow.step is f.Step.PIN, driver.flow.step
        reader.card.faults.add(case.fault)
    ended = driver.authenticate(script)
    if ended is not None:
        return ended
    driver.order(script)
    return driver.pay(script)


@pytest.mark.parametrize("name", CASES)
def test_each_card_fault_ends_on_its_screen_with_no_try_money_or_document_lost(
    service: Service, tmp_path: Path, name: str
) -> None:
    case = CASES[name]
    card = service.card(RESIDENT)
    driver, reader = make_driver(service, tmp_path / "out")
    script = VisitScript(pin=card.pin, certificate="juminhyo", pay_yen=1000)

    result = visit_with_fault(driver, reader, script, case)

    assert reader.card.faults.hits, "the fault never fired"
    if case.outcome == "issued":
        assert result.status == "issued", result
    else:
        assert (result.status, result.error_code) == ("error", case.outcome), result
        assert result.paid == 0 and result.change == 0 and result.documents == []
        assert not list((tmp_path / "out").glob("**/*.pdf")), "nothing may be printed"
        states = [row.state for row in service.query(select(KioskTransaction.state))]
        assert "paid" not in states and "released" not in states, states
        assert service.query(select(IssuedDocument)) == []
    assert driver.flow.step is f.Step.START and not driver.flow.holds_personal_data
    assert CardFile.load(card.path).pins["auth"].tries_left == 3, "a fault must not cost a PIN try"

    # The same card, behaving again (placed again if a fault pulled it), is served at once.
    reader.card.faults.clear()
    reader.place()
    again = driver.visit(script)
    assert again.status == "issued", again


def test_slow_answers_make_the_visit_slower_by_about_their_delay(service: Service, tmp_path: Path) -> None:
    card = service.card(RESIDENT)
    driver, reader = make_driver(service, tmp_path / "out")
    script = VisitScript(pin=card.pin, certificate="juminhyo", pay_yen=1000)
    reader.card.faults.add(SlowAnswer(0.05))
    began = time.monotonic()
    result = driver.visit(script)
    took = time.monotonic() - began
    assert result.status == "issued", result
    apdus = len(reader.card.faults.hits)
    assert apdus >= 10 and took >= apdus * 0.05, (apdus, took)
