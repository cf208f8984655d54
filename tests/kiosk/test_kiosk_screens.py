"""A snapshot of every step's screen at 100x30, in Japanese and in English.

The screens are shown for a flow walked to each step with the pure state machine (the
service's answers are canned in flowkit.py; nothing here talks to a service, because a
snapshot is about what the screen draws). The clock is fixed, so the countdown is too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flowkit import Clock, paid_to_printing, ticket, to_confirm, to_payment, to_pin, to_remove_card

from kiosk import flow as f
from kiosk.app import KioskApp
from kiosk.card import VirtualCardReader
from kiosk.config import KioskSettings, build_devices


def _walk(name: str, flow: f.KioskFlow) -> None:
    if name == "start":
        return
    flow.handle(f.Pressed(f.Action.GYOSEI))
    if name == "service_menu":
        return
    flow.handle(f.Pressed(f.Action.CERTIFICATES))
    if name == "language":
        return
    flow.handle(f.LanguageChosen("ja"))
    if name == "terms":
        return
    flow.handle(f.Pressed(f.Action.ACCEPT))
    if name == "place_card":
        return
    flow.handle(f.CardPlaced())
    if name == "reading_card":
        return
    raise AssertionError(name)


def _from_pin(name: str, flow: f.KioskFlow) -> None:
    to_pin(flow)
    if name == "pin_last_try":  # two wrong PINs: the wrong-PIN line, 1 try left and the warning
        effects = flow.handle(f.PinEntered("0000"))
        flow.handle(f.PinRejected(ticket(effects, f.SignChallenge), 2))
        effects = flow.handle(f.PinEntered("0000"))
        flow.handle(f.PinRejected(ticket(effects, f.SignChallenge), 1))
    elif name == "authenticating":
        flow.handle(f.PinEntered("0000"))
    elif name == "pin_locked":
        effects = flow.handle(f.PinEntered("0000"))
        flow.handle(f.PinLocked(ticket(effects, f.SignChallenge)))


def _refused(name: str, flow: f.KioskFlow) -> None:
    """A refusal by the rules at authentication, the card still on the reader."""
    to_pin(flow)
    effects = flow.handle(f.PinEntered("0000"))
    effects = flow.handle(f.ChallengeSigned(ticket(effects, f.SignChallenge), b"SIG"))
    code = "not_available_at_kiosk" if name == "refused_dv" else "under_15"
    flow.handle(f.ServiceFailed(ticket(effects, f.Authenticate), code, "不可", "refused", refused=True))


def _card_left_behind(name: str, flow: f.KioskFlow) -> None:
    """The last visit ended with the card on the reader; the next person begins."""
    to_pin(flow)
    flow.handle(f.Pressed(f.Action.CANCEL))
    flow.handle(f.Pressed(f.Action.ACKNOWLEDGE))
    if name == "start_card_left_behind":
        return
    for event in (
        f.Pressed(f.Action.GYOSEI),
        f.Pressed(f.Action.CERTIFICATES),
        f.LanguageChosen("ja"),
        f.Pressed(f.Action.ACCEPT),
    ):
        flow.handle(event)


def _choosing(name: str, flow: f.KioskFlow) -> None:
    to_remove_card(flow)
    if name == "remove_card":
        return
    flow.handle(f.CardRemoved())
    if name == "municipality":
        return
    flow.handle(f.MunicipalityChosen("08217", "jushochi"))
    if name == "certificate":
        return
    flow.handle(f.CertificateChosen("juminhyo" if name == "persons" else "inkan"))


def _paying(name: str, flow: f.KioskFlow) -> None:
    if name == "confirm":
        to_confirm(flow, kind="juminhyo", copies=2)
        return
    if name == "ordering":
        to_confirm(flow)
        flow.handle(f.Pressed(f.Action.CONFIRM))
        return
    to_payment(flow)
    effects = flow.handle(f.CashInserted(100))
    if name in ("payment", "payment_cancelled"):
        if name == "payment_cancelled":
            flow.handle(f.Pressed(f.Action.CANCEL))
        return
    effects = flow.handle(f.CashInserted(1000))
    if name == "settling":
        return
    effects = paid_to_printing(flow, effects)
    printing = ticket(effects, f.PrintDocuments)
    if name == "printing":
        return
    flow.handle(f.Printed(printing))


WALKS: dict[str, Callable[[str, f.KioskFlow], None]] = {
    **dict.fromkeys(("start", "service_menu", "language", "terms", "place_card", "reading_card"), _walk),
    **dict.fromkeys(("pin", "pin_last_try", "authenticating", "pin_locked"), _from_pin),
    **dict.fromkeys(("refused_under_15", "refused_dv"), _refused),
    **dict.fromkeys(("start_card_left_behind", "place_card_left_behind"), _card_left_behind),
    **dict.fromkeys(("remove_card", "municipality", "certificate", "persons", "copies"), _choosing),
    **dict.fromkeys(
        ("confirm", "ordering", "payment", "settling", "printing", "take_items", "payment_cancelled"), _paying
    ),
}


def kiosk_at(name: str, language: str, tmp_path: Path) -> KioskApp:
    clock = Clock()
    flow = f.KioskFlow(clock=clock)
    flow.handle(f.PaperChanged(500))
    WALKS[name](name, flow)
    flow.language = language
    card = tmp_path / "unused-card.json"
    settings = KioskSettings(
        server_url="http://127.0.0.1:9", kiosk_id="SNAP-01", kiosk_secret="unused", printer_dir=tmp_path / "printed"
    )
    devices = build_devices(settings, reader=_NoCardReader(card))
    return KioskApp(devices, flow=flow, watch_card=False, tick_seconds=0)


class _NoCardReader(VirtualCardReader):
    """A reader that is never read: the snapshots draw screens, they run no effects."""

    def __init__(self, path: Path) -> None:
        self.name = "virtual"

    def card_present(self) -> bool:
        return False

    def close(self) -> None:
        pass


@pytest.mark.parametrize("language", ["ja", "en"])
@pytest.mark.parametrize("name", list(WALKS))
def test_each_screen_looks_as_approved(snap_compare, name: str, language: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = kiosk_at(name, language, tmp_path)

    async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
        app._sync()  # draw the countdown of the fixed clock
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 30), run_before=settle)


@pytest.mark.parametrize("language", ["ja", "en"])
def test_the_operator_panel_looks_as_approved(snap_compare, language: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = kiosk_at("start", language, tmp_path)

    async def open_panel(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("f12")
        await pilot.pause()
        await pilot.press(*"0000", "enter")
        await pilot.pause()
        for _ in range(100):  # the health check runs in a worker; wait for its verdict
            if "…" not in str(app.screen.query_one("#service-state").render()):
                break
            await pilot.pause(0.05)

    assert snap_compare(app, terminal_size=(100, 30), run_before=open_panel)
