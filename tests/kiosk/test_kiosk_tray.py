"""The in-process card tray (`--reader tray`, the browser kiosk's reader) and the operator
panel in front of it: which card is in the tray, a failed placement in words, the focus on
the tray's next move."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from appkit import until
from servicekit import Service
from textual.widgets import Button, Static

from cardreader.status import NoCardError
from kiosk import flow as f
from kiosk.app import KioskApp
from kiosk.card import TrayReader, open_reader
from kiosk.config import KioskSettings, build_devices

pytestmark = [pytest.mark.anyio]


def test_the_tray_reader_is_empty_until_a_card_is_placed_and_reports_a_swap_as_removal_then_placement(
    service: Service,
) -> None:
    reader = open_reader("tray")
    assert isinstance(reader, TrayReader)
    assert reader.wait_change(0.05) is None  # nothing was ever there
    with pytest.raises(NoCardError):
        reader.read()
    reader.place(service.card("toride-0001").path)
    assert reader.wait_change(0.05) is True
    assert reader.read().tries_left == 3
    reader.place(service.card("toride-0002").path)  # swapped before the next wait
    assert reader.wait_change(0.05) is False
    assert reader.wait_change(0.05) is True
    reader.take()
    assert reader.wait_change(0.05) is False
    assert not reader.card_present()


def _tray_kiosk(service: Service, tmp_path: Path, cards: Path) -> KioskApp:
    settings = KioskSettings(
        server_url=service.url,
        kiosk_id=service.kiosk_id,
        kiosk_secret=service.kiosk_secret,
        printer_dir=tmp_path / "printed",
        operator_code="8642",
        reader="tray",
        demo_cards=cards,
    )  # type: ignore[arg-type]
    return KioskApp(build_devices(settings), tick_seconds=0.2)


async def _open_panel(pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.press("f12")
    await pilot.pause()
    await pilot.press(*"8642", "enter")
    await pilot.pause(0.3)


async def test_the_operator_panel_names_the_card_in_the_tray_and_puts_it_on_the_reader_with_enter(
    service: Service, tmp_path: Path
) -> None:
    app = _tray_kiosk(service, tmp_path, service.data_dir / "cards")
    async with app.run_test(size=(100, 30)) as pilot:
        await _open_panel(pilot)
        assert "なし" in str(app.screen.query_one("#tray-current", Static).render())
        assert app.screen.focused is app.screen.query_one("#tray-0", Button)
        assert "PIN 1234" in str(app.screen.query_one("#tray-0", Button).label)
        await pilot.press("enter")  # places the first card
        await pilot.pause(0.5)
        assert "toride-0001" in str(app.screen.query_one("#tray-current", Static).render())
        await pilot.press("escape")
        await pilot.pause(0.3)
        assert app.flow.card_present
        await _open_panel(pilot)
        assert app.screen.focused is app.screen.query_one("#tray-remove", Button)
        await pilot.press("enter", "escape")
        await pilot.pause(0.5)
        assert not app.flow.card_present
        await until(pilot, f.Step.START)


async def test_a_card_file_that_cannot_be_read_is_reported_in_words_and_nothing_is_placed(
    service: Service, tmp_path: Path
) -> None:
    cards = tmp_path / "cards"
    shutil.copytree(service.data_dir / "cards", cards)
    (cards / "toride-0001.json").write_text("{not a card")
    app = _tray_kiosk(service, tmp_path, cards)
    async with app.run_test(size=(100, 30)) as pilot:
        await _open_panel(pilot)
        await pilot.press("enter")
        await pilot.pause(0.5)
        error = str(app.screen.query_one("#tray-error", Static).render())
        assert "カードファイルを読めません" in error
        assert "なし" in str(app.screen.query_one("#tray-current", Static).render())
        assert app.tray.current is None and not app.devices.runner.reader.card_present()


async def test_the_operator_panel_lists_outcomes_in_words_at_japan_time(service: Service, tmp_path: Path) -> None:
    import datetime as dt

    from kiosk.runner import Outcome

    app = _tray_kiosk(service, tmp_path, service.data_dir / "cards")
    outcomes = app.devices.runner.outcomes
    outcomes.appendleft(Outcome(dt.datetime(2026, 12, 7, 1, 0, 5, tzinfo=dt.UTC), "issued", "a" * 32, 300))
    outcomes.appendleft(Outcome(dt.datetime(2026, 12, 7, 14, 59, 0, tzinfo=dt.UTC), "under_15", None, 0))
    async with app.run_test(size=(100, 30)) as pilot:
        await _open_panel(pilot)
        lines = [str(widget.render()) for widget in app.screen.query(".outcome").results(Static)]
    assert lines[0].startswith("23:59:00（日本時間）") and "(under_15)" in lines[0] and "15歳未満" in lines[0]
    assert lines[1].startswith("10:00:05（日本時間）") and "交付済み (issued)" in lines[1]
