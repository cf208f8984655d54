"""The PIN never leaves the card call: not in logs, exceptions, messages, HTTP requests,
snapshots, printed files or the flow's state. A whole visit with one wrong and one right
PIN is run through the Textual app against the real service, and everything is searched."""

from __future__ import annotations

import html
import logging
import re
from pathlib import Path

import httpx
import pytest
from appkit import Kiosk, click, order_one_copy, start_to_card, until, until_true
from servicekit import Service

from kiosk import flow as f
from kiosk.app import KioskApp
from kiosk.card import VirtualCardReader
from kiosk.client import ClientSettings, ServiceClient
from kiosk.config import KioskDevices, KioskSettings
from kiosk.payment import CashAcceptor
from kiosk.printer import Printer
from kiosk.runner import EffectRunner
from konbini_common.cardfile import CardFile, PinRecord

pytestmark = pytest.mark.anyio
PIN = "4826"  # distinctive: set on the card for this test
WRONG_PIN = "7395"
SNAPSHOTS = Path(__file__).parent / "__snapshots__"


def shows(secret: str, text: str) -> bool:
    """Whether `text` holds `secret` as a token of its own: not as four characters inside a
    longer random token (a hex digest, a base64 body, a transaction id), where any four
    digits turn up by chance."""
    return re.search(rf"(?<![0-9A-Za-z+/_-]){secret}(?![0-9A-Za-z+/=_-])", text) is not None


def readable_pdf(path: Path) -> str:
    from pypdf import PdfReader

    reader = PdfReader(path)
    return "".join(page.extract_text() or "" for page in reader.pages) + repr(reader.metadata)


def svg_text(path: Path) -> str:
    return html.unescape("".join(re.findall(r"<text[^>]*>(.*?)</text>", path.read_text(encoding="utf-8"))))


class RecordingTransport(httpx.HTTPTransport):
    """Keeps every request the kiosk sends (URL, headers, body) for the search."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(str(request.url).encode() + repr(request.headers.raw).encode() + request.read())
        return super().handle_request(request)


def kiosk_with_recorder(service: Service, tmp_path: Path, card_path: Path) -> tuple[Kiosk, RecordingTransport]:
    recorder = RecordingTransport()
    settings = KioskSettings(server_url=service.url, printer_dir=tmp_path / "printed")
    client = ServiceClient(ClientSettings(service.url, service.kiosk_id, service.kiosk_secret), transport=recorder)
    reader = VirtualCardReader(str(card_path), placed=True)
    runner = EffectRunner(reader, client, CashAcceptor(), Printer(settings.printer_dir))
    app = KioskApp(KioskDevices(settings, runner), tick_seconds=0.2)
    return Kiosk(app, reader, settings.printer_dir, []), recorder


async def test_the_pin_is_found_nowhere_after_a_whole_visit(
    service: Service, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    card_path = service.card("toride-0001").path
    card = CardFile.load(card_path)
    card.pins["auth"] = PinRecord.new(PIN, 3)
    card.save(card_path)
    kiosk, recorder = kiosk_with_recorder(service, tmp_path, card_path)
    app = kiosk.app
    messages: list[object] = []
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        await start_to_card(pilot)
        await until(pilot, f.Step.PIN)
        await pilot.press(*WRONG_PIN, "enter")
        await until_true(pilot, lambda: app.flow.tries_left == 2 and app.flow.step is f.Step.PIN)
        await pilot.press(*PIN, "enter")
        await until(pilot, f.Step.REMOVE_CARD)
        assert not shows(PIN, repr(vars(app.flow))) and not shows(PIN, repr(vars(app.screen)))
        kiosk.reader.take()
        await until(pilot, f.Step.MUNICIPALITY)
        await order_one_copy(pilot, "inkan")
        await click(pilot, "#cash-1000")
        await until(pilot, f.Step.TAKE_ITEMS)
        worker_descriptions = [repr(w) + w.description for w in app.workers]
        await click(pilot, "#acknowledge")
        await until(pilot, f.Step.START)
    assert "transaction" in caplog.text  # the logs were captured, at DEBUG
    for secret in (PIN, WRONG_PIN):
        assert not shows(secret, caplog.text)
        for record in caplog.records:
            assert not shows(secret, repr(record.args)) and not shows(secret, str(record.exc_info))
        assert not [m for m in messages if shows(secret, repr(m)) or shows(secret, repr(getattr(m, "event", "")))]
        assert not [w for w in worker_descriptions if shows(secret, w)]
        assert not [body for body in recorder.sent if shows(secret, body.decode("latin-1"))]
        # What a person can read: the printed text and metadata, the snapshots' text. (Raw
        # bytes would hold four digits by chance: compressed streams, offsets, coordinates.)
        for path in kiosk.printed.rglob("*.pdf"):
            assert not shows(secret, readable_pdf(path)), path
        for path in SNAPSHOTS.rglob("*.svg"):
            assert not shows(secret, svg_text(path)), path
        assert not shows(secret, card_path.read_text(encoding="utf-8"))  # only a salted verifier is stored
    assert len(recorder.sent) >= 7  # start, authenticate, order, payment, list, fetch, printed
    (certificate,) = (p for p in kiosk.printed.rglob("*.pdf") if not p.name.endswith("-receipt.pdf"))
    assert "取手市" in readable_pdf(certificate)


def test_a_wrong_pin_error_carries_the_tries_left_but_not_the_pin(service: Service) -> None:
    from cardreader.status import WrongPinError

    reader = VirtualCardReader(str(service.card("toride-0001").path))
    with pytest.raises(WrongPinError) as caught:
        reader.sign(WRONG_PIN, b"challenge")
    assert caught.value.tries_left == 2
    assert WRONG_PIN not in str(caught.value) and WRONG_PIN not in repr(caught.value.args)


def test_the_search_finds_a_pin_sent_or_logged_as_a_token_of_its_own() -> None:
    assert shows(PIN, f'{{"pin": "{PIN}"}}') and shows(PIN, f"verify pin={PIN} ok") and shows(PIN, f"PIN {PIN}")
    assert not shows(PIN, f"sha256 ab{PIN}cd") and not shows(PIN, f"tx-Zq{PIN}x")
