"""Every screen works at 80x24, the smallest terminal the kiosk supports, and at 160x50.

"Works" is checked on what the screen really lays out: the title, the alarm line, the
failure message and the action buttons are on screen without scrolling; every other
widget can be scrolled fully into view; no button label is cut. On the PIN screen the
wrong-PIN line, the tries left and the last-try warning are on screen beside the keypad
(in a column, the focused keypad scrolled them away at 80x24). The same screens are
snapshotted at both sizes (in Japanese, the wider text), walked as in test_kiosk_screens.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.cells import cell_len
from test_kiosk_screens import WALKS, kiosk_at
from textual.geometry import Region
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button

from kiosk.app import KioskApp
from kiosk.i18n import text

SIZES = [(80, 24), (160, 50)]
pytestmark = pytest.mark.anyio


def fully_visible(app: KioskApp, widget: Widget) -> bool:
    """The widget's whole region is on screen and drawn (no other widget over it, not
    clipped by a scrolling container)."""
    region = widget.region
    screen: Screen[object] = app.screen
    if region.area == 0 or not Region(0, 0, *app.size).contains_region(region):
        return False
    corners = {
        (region.x, region.y),
        (region.right - 1, region.y),
        (region.x, region.bottom - 1),
        (region.right - 1, region.bottom - 1),
    }
    for x, y in corners:
        found, _ = screen.get_widget_at(x, y)
        if found is not widget and widget not in found.ancestors:
            return False
    return True


async def _shown(app: KioskApp, pilot) -> None:  # type: ignore[no-untyped-def]
    app._sync()
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("language", ["ja", "en"])
async def test_the_pin_screen_shows_the_wrong_pin_the_tries_left_and_the_last_try_warning(
    size: tuple[int, int], language: str, tmp_path: Path
) -> None:
    app = kiosk_at("pin_last_try", language, tmp_path)
    async with app.run_test(size=size) as pilot:
        await _shown(app, pilot)
        screen = app.screen
        expected = {
            "#pin-wrong": text(language, "pin.wrong"),
            "#tries-left": text(language, "pin.tries_left", tries=1),
            "#last-try": text(language, "pin.last_try"),
        }
        for selector, words in expected.items():
            widget = screen.query_one(selector)
            assert str(widget.render()) == words
            assert fully_visible(app, widget), f"{selector} is not on screen at {size}"
        for selector in ("#title", "#pin-mask", "#digit-1", "#digit-0", "#keypad-enter", "#cancel"):
            assert fully_visible(app, screen.query_one(selector)), f"{selector} is not on screen at {size}"


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("language", ["ja", "en"])
@pytest.mark.parametrize("name", list(WALKS))
async def test_every_screen_works_at_the_smallest_and_a_large_terminal(
    name: str, language: str, size: tuple[int, int], tmp_path: Path
) -> None:
    app = kiosk_at(name, language, tmp_path)
    async with app.run_test(size=size) as pilot:
        await _shown(app, pilot)
        screen = app.screen
        always_shown = [*screen.query("#title, #card-alarm, #failure, #left-behind"), *screen.query("#actions Button")]
        for widget in always_shown:
            assert fully_visible(app, widget), f"{widget} is not on screen at {size}"
        for button in screen.query(Button):
            assert cell_len(str(button.label)) <= button.content_region.width, f"{button} label is cut"
        body = screen.query_one("#body")
        for widget in body.query("*"):
            if not widget.display or widget.children:
                continue
            widget.scroll_visible(animate=False, immediate=True)
            await pilot.pause()
            assert fully_visible(app, widget), f"{widget} cannot be scrolled into view at {size}"


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", list(WALKS))
def test_each_screen_at_the_smallest_and_a_large_terminal_looks_as_approved(  # type: ignore[no-untyped-def]
    snap_compare, name: str, size: tuple[int, int], tmp_path: Path
) -> None:
    app = kiosk_at(name, "ja", tmp_path)

    async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
        app._sync()  # draw the countdown of the fixed clock
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=settle)
