"""The headless driver runs whole visits against the real service over HTTP."""

from __future__ import annotations

from pathlib import Path

from pypdf import PdfReader
from servicekit import Service

from kiosk.card import VirtualCardReader
from kiosk.config import KioskSettings, build_devices
from kiosk.driver import Driver, VisitScript
from kiosk.flow import KioskFlow


def make_driver(service: Service, resident_id: str, out: Path) -> Driver:
    settings = KioskSettings(
        server_url=service.url, kiosk_id=service.kiosk_id, kiosk_secret=service.kiosk_secret, printer_dir=out
    )
    reader = VirtualCardReader(str(service.card(resident_id).path))
    devices = build_devices(settings, reader=reader)
    return Driver(KioskFlow(), devices.runner)


def pdf_text(path: str) -> str:
    return "".join(page.extract_text() or "" for page in PdfReader(path).pages)


def test_a_juminhyo_is_issued_paid_and_printed_for_the_card_holder(service: Service, tmp_path: Path) -> None:
    card = service.card("toride-0001")
    driver = make_driver(service, "toride-0001", tmp_path / "out")
    result = driver.visit(VisitScript(pin=card.pin, certificate="juminhyo", pay_yen=1000))
    assert result.status == "issued", result
    assert result.paid == 1000 and result.change == 1000 - result.fee and result.fee > 0
    assert len(result.documents) == 1
    text = pdf_text(result.documents[0])
    assert card.name.replace("　", "") in text.replace(" ", "").replace("　", "")
    assert driver.flow.step.value == "start" and not driver.flow.holds_personal_data
