"""The real stack: a virtual card in pcscd through the vpcd bridge, pyscard, the kiosk flow,
the service on 127.0.0.1, SQLite, and a printed PDF at the end."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from appkit import Kiosk, click, order_one_copy, until
from servicekit import Service
from sqlalchemy import select

from certserver.cli import main as certserver_main
from certserver.db.models.transactions import KioskTransaction
from kiosk import flow as f
from kiosk.app import KioskApp
from kiosk.card import PcscCardReader
from kiosk.cli import main
from kiosk.config import KioskSettings, build_devices
from kiosk.i18n import text

pytestmark = [pytest.mark.pcsc, pytest.mark.slow]


def test_simulate_through_a_pcsc_reader_issues_the_certificate(
    service: Service, vpcd_slot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    from cardreader.virtualcard import VirtualCard, VpcdBridge

    card = service.card("toride-0001")
    bridge = VpcdBridge(VirtualCard(card.path), port=vpcd_slot.port)
    bridge.insert()

    def take_card_once_authenticated() -> None:
        # The resident takes the card when the kiosk asks: after the service accepted it.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if service.query(select(KioskTransaction.id).where(KioskTransaction.state == "authenticated")):
                bridge.remove()
                return
            time.sleep(0.05)

    taker = threading.Thread(target=take_card_once_authenticated, daemon=True)
    taker.start()
    try:
        with pytest.MonkeyPatch.context() as env:  # the secrets never on a command line
            env.setenv("KIOSK_SECRET", service.kiosk_secret)
            env.setenv("KIOSK_PIN", card.pin)
            code = main(
                [
                    "simulate",
                    "--server",
                    service.url,
                    "--kiosk-id",
                    service.kiosk_id,
                    "--reader",
                    f"pcsc:{vpcd_slot.reader}",
                    "--certificate",
                    "inkan",
                    "--out",
                    str(tmp_path / "out"),
                ]
            )
    finally:
        taker.join(timeout=5)
        bridge.remove()
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["status"] == "issued"
    # What the resident takes home is a certificate a bank would accept.
    assert certserver_main(["verify", "--data-dir", str(service.data_dir), result["documents"][0]]) == 0


@pytest.mark.anyio
async def test_the_operator_tray_puts_a_demo_card_in_the_pcsc_reader_for_a_whole_visit(
    service: Service, vpcd_slot, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    settings = KioskSettings(
        server_url=service.url,
        kiosk_id=service.kiosk_id,
        kiosk_secret=service.kiosk_secret,
        printer_dir=tmp_path / "printed",
        reader=f"pcsc:{vpcd_slot.reader}",
        vpcd_port=vpcd_slot.port,
        demo_cards=service.data_dir / "cards",
        operator_code="8642",
    )
    devices = build_devices(settings)
    assert isinstance(devices.runner.reader, PcscCardReader)
    app = KioskApp(devices, tick_seconds=0.2)
    kiosk = Kiosk(app, devices.runner.reader, settings.printer_dir, [])  # type: ignore[arg-type]

    async def operator(button: str) -> None:
        await pilot.press("f12")
        await pilot.pause()
        await pilot.press(*"8642", "enter")
        await pilot.pause(0.2)
        await click(pilot, button)
        # The panel's reader line follows the tray: the operator sees the card arrive or go.
        expected = text(app.flow.language, "card_status.absent" if button == "#tray-remove" else "card_status.present")
        deadline = time.monotonic() + 10
        while expected not in str(app.screen.query_one("#reader-state").render()) and time.monotonic() < deadline:
            await pilot.pause(0.1)
        assert expected in str(app.screen.query_one("#reader-state").render())
        await pilot.press("escape")  # closes the panel, and cancels nothing
        await pilot.pause()

    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, f.Step.START)
            await operator("#tray-0")  # toride-0001, first in the index
            assert app.tray.current is not None
            await click(pilot, "#gyosei")
            await until(pilot, f.Step.SERVICE_MENU)
            await click(pilot, "#certificates")
            await until(pilot, f.Step.LANGUAGE)
            await click(pilot, "#lang-en")
            await until(pilot, f.Step.TERMS)
            await click(pilot, "#accept")
            await until(pilot, f.Step.PIN)  # the card was already on the reader
            await pilot.press(*service.card("toride-0001").pin, "enter")
            await until(pilot, f.Step.REMOVE_CARD)
            await operator("#tray-remove")
            await until(pilot, f.Step.MUNICIPALITY)
            await order_one_copy(pilot, "juminhyo")
            await click(pilot, "#cash-500")
            await until(pilot, f.Step.TAKE_ITEMS)
            (printed,) = (p for p in kiosk.printed.iterdir() if not p.name.endswith("-receipt.pdf"))
            # The kiosk reports "printed" from a worker while this screen shows; the verifier
            # reads the issuing records, which say issued only after that report.
            printed_tx = select(KioskTransaction.id).where(KioskTransaction.state == "printed")
            deadline = time.monotonic() + 10
            while not service.query(printed_tx) and time.monotonic() < deadline:
                await pilot.pause(0.05)
            assert certserver_main(["verify", "--data-dir", str(service.data_dir), str(printed)]) == 0
            await click(pilot, "#acknowledge")
            await until(pilot, f.Step.START)
    finally:
        app.tray.remove()
        devices.close()
