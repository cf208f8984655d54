"""The kiosk looks and behaves like a store's machine: its own bright theme, where the visit
is (the step indicator), a centred PIN pad, and the main button of each screen focused so
that Enter works without Tab."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_kiosk_screens import kiosk_at
from textual.widgets import Static

from kiosk.widgets.keypad import Keypad

pytestmark = pytest.mark.anyio

MAIN_BUTTON = {
    "start": "gyosei",
    "service_menu": "certificates",
    "language": "lang-ja",
    "terms": "accept",
    "municipality": "municipality-0",
    "certificate": "kind-juminhyo",
    "persons": "next",
    "copies": "next",
    "confirm": "confirm",
    "payment": "cash-10",
    "take_items": "acknowledge",
    "pin": "keypad",
    "place_card_left_behind": "use-card",
    "refused_under_15": "acknowledge",
}


@pytest.mark.parametrize(("name", "main"), MAIN_BUTTON.items())
async def test_each_screen_focuses_its_main_button(name: str, main: str, tmp_path: Path) -> None:
    app = kiosk_at(name, "ja", tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        app._sync()
        await pilot.pause()
        assert app.screen.focused is not None and app.screen.focused.id == main


@pytest.mark.parametrize(
    ("name", "current"),
    [("pin", 0), ("certificate", 1), ("confirm", 2), ("payment", 3), ("take_items", 4), ("start", None)],
)
async def test_the_step_indicator_marks_the_current_phase_and_ticks_the_ones_behind(
    name: str, current: int | None, tmp_path: Path
) -> None:
    app = kiosk_at(name, "en", tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        app._sync()
        await pilot.pause()
        assert app.theme == "konbini" and not app.current_theme.dark
        phases = list(app.screen.query(".phase").results(Static))
        if current is None:
            assert phases == []  # before the visit proper: no phases to show
            return
        assert len(phases) == 5
        for index, phase in enumerate(phases):
            state = "done" if index < current else "current" if index == current else "todo"
            assert phase.has_class(state), f"phase {index} is not {state}"
        assert str(phases[current].render()).startswith(f"{current + 1} ")
        assert all(str(p.render()).startswith("✓") for p in phases[:current])


async def test_the_pin_pad_stands_in_the_middle_with_big_keys_on_a_large_screen(tmp_path: Path) -> None:
    app = kiosk_at("pin", "ja", tmp_path)
    async with app.run_test(size=(160, 50)) as pilot:
        app._sync()
        await pilot.pause()
        keypad = app.screen.query_one(Keypad)
        layout = app.screen.query_one("#pin-layout")
        left = keypad.region.x - layout.region.x
        right = layout.region.right - app.screen.query_one("#pin-info").region.right
        assert left > 10 and abs(left - right) <= 2  # centred, not pinned to the left
        assert app.screen.query_one("#digit-5").region.height >= 4


def test_the_everyone_box_of_a_family_register_or_its_fuhyo_is_not_called_the_household() -> None:
    from kiosk.i18n import text
    from kiosk.screens.order import whole_label_key

    assert text("ja", whole_label_key("juminhyo")) == "世帯全員"
    assert text("ja", whole_label_key("koseki_fuhyo")) == "附票に記載の全員"
    assert text("ja", whole_label_key("koseki_zenbu")) == "戸籍に記載の全員"
    assert "household" not in text("en", whole_label_key("koseki_fuhyo"))


async def test_the_copies_screen_states_the_limit_and_the_payment_screen_that_cancel_returns_the_money(
    tmp_path: Path,
) -> None:
    from kiosk.i18n import text

    app = kiosk_at("copies", "en", tmp_path / "copies")
    async with app.run_test(size=(80, 24)) as pilot:
        app._sync()
        await pilot.pause()
        offer = app.flow.selection.offer
        assert offer is not None
        limit = str(app.screen.query_one("#copies-limit", Static).render())
        assert limit == text("en", "copies.limit", max=offer.max_copies) and str(offer.max_copies) in limit
    app = kiosk_at("payment", "ja", tmp_path / "payment")
    async with app.run_test(size=(80, 24)) as pilot:
        app._sync()
        await pilot.pause()
        assert "お返しします" in str(app.screen.query_one("#cancel-returns", Static).render())
    assert "印刷します" in text("ja", "terms.body") and "手数料はお支払いの後に印刷" not in text("ja", "terms.body")


async def test_english_mode_translates_municipality_names_and_relationships_and_the_first_screens_are_bilingual(
    tmp_path: Path,
) -> None:
    from textual.widgets import Button, Checkbox

    app = kiosk_at("municipality", "en", tmp_path / "municipality")
    async with app.run_test(size=(100, 30)) as pilot:
        app._sync()
        await pilot.pause()
        labels = [str(b.label) for b in app.screen.query(".choice").results(Button)]
        assert any("Toride City (取手市)" in label for label in labels), labels
    app = kiosk_at("persons", "en", tmp_path / "persons")
    async with app.run_test(size=(100, 30)) as pilot:
        app._sync()
        await pilot.pause()
        people = [str(box.label) for box in app.screen.query(".person").results(Checkbox)]
        assert people and all(
            any(word in label for word in ("self", "wife", "child", "son", "daughter", "head")) for label in people
        ), people
    app = kiosk_at("start", "ja", tmp_path / "start")
    async with app.run_test(size=(80, 24)) as pilot:
        app._sync()
        await pilot.pause()
        assert "Government services" in str(app.screen.query_one("#gyosei", Button).label)
    # Before the language is chosen, every label and button is in both languages.
    for name in ("service_menu", "language"):
        app = kiosk_at(name, "ja", tmp_path / f"{name}-bilingual")
        async with app.run_test(size=(100, 30)) as pilot:
            app._sync()
            await pilot.pause()
            buttons = [str(b.label) for b in app.screen.query(Button).results(Button)]
        assert buttons and all(_both_languages(label) for label in buttons), buttons


def _both_languages(label: str) -> bool:
    """Japanese text and Latin letters side by side (or a language's own name)."""
    japanese = any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in label)
    latin = any("a" <= ch.lower() <= "z" for ch in label)
    return (japanese and latin) or label in ("日本語", "English")


async def test_every_unavailable_choice_says_why_and_whether_it_is_not_now_or_not_at_a_store(tmp_path: Path) -> None:
    from textual.widgets import Button

    from kiosk.models import Municipality, MunicipalityRole, Offer

    hours = "戸籍の証明書は平日 9:00〜17:00 のみ交付します。"
    offers = (
        Offer(kind="juminhyo", fee_yen=200, max_copies=5),
        Offer(kind="koseki_zenbu", fee_yen=450, max_copies=5, available=False, unavailable_reason="outside_hours",
              unavailable_message_ja=hours, unavailable_message_en="Family-register certificates: weekdays only."),
        Offer(kind="inkan", fee_yen=200, max_copies=5, available=False, unavailable_reason="seal_cancelled"),
    )  # fmt: skip
    app = kiosk_at("certificate", "ja", tmp_path)
    app.flow.selection.municipality = Municipality("08217", "取手市", MunicipalityRole.JUSHOCHI, True, None, offers)
    async with app.run_test(size=(100, 30)) as pilot:
        app._sync()
        await pilot.pause()
        koseki = app.screen.query_one("#kind-koseki_zenbu", Button)
        inkan = app.screen.query_one("#kind-inkan", Button)
        assert koseki.disabled and "現在は交付できません" in str(koseki.label)  # not now: hours
        assert inkan.disabled and "コンビニでは交付できません" in str(inkan.label)  # not at a store
        assert str(app.screen.query_one("#kind-koseki_zenbu-why", Static).render()) == hours
        assert "印鑑登録" in str(app.screen.query_one("#kind-inkan-why", Static).render())


@pytest.mark.parametrize("language", ["ja", "en"])
async def test_with_a_demo_tray_the_take_card_screen_says_how_to_take_the_card(language: str, tmp_path: Path) -> None:
    """In the demo the operator's tray is the hand that takes the card: without saying so the
    visit stalls at this screen until it times out (a new user's trial)."""
    plain = kiosk_at("remove_card", language, tmp_path / "plain")
    async with plain.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert not plain.screen.query("#demo-hint")
    demo = kiosk_at("remove_card", language, tmp_path / "demo")
    demo.devices.settings.demo_cards = tmp_path / "cards"
    async with demo.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        hint = str(demo.screen.query_one("#demo-hint", Static).render())
    assert "F12" in hint and ("カードを取る" in hint if language == "ja" else "Take the card" in hint)
