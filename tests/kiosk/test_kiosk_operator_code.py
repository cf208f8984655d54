"""The operator code (係員コード) is a secret that locks after a few wrong entries, so a
passer-by cannot try codes at the kiosk one after another."""

from __future__ import annotations

from pathlib import Path

import pytest
from appkit import make_kiosk
from servicekit import Service
from textual.widgets import Static

from kiosk.config import CodeCheck, KioskSettings, OperatorCode

SIZE = (100, 30)


def test_five_wrong_entries_lock_the_code_even_against_the_right_one_until_the_lock_ends() -> None:
    code = OperatorCode("8642")
    wrong = [code.check(entry, now=float(moment)) for moment, entry in enumerate(("1111", "2222", "3333", "4444"))]
    assert wrong == [CodeCheck.WRONG] * 4
    assert code.check("5555", now=2.0) is CodeCheck.LOCKED
    assert code.check("8642", now=3.0) is CodeCheck.LOCKED  # the right code, too: guessing gains nothing
    assert code.check("8642", now=2.0 + OperatorCode.LOCK_SECONDS - 0.1) is CodeCheck.LOCKED
    assert code.check("8642", now=2.0 + OperatorCode.LOCK_SECONDS) is CodeCheck.ACCEPTED


def test_a_right_entry_clears_the_count_of_wrong_ones() -> None:
    code = OperatorCode("8642")
    for moment in range(10):  # four wrong, one right, over and over: never locked
        for attempt in range(4):
            assert code.check(f"000{attempt}", now=5 * moment + attempt) is CodeCheck.WRONG
        assert code.check("8642", now=5 * moment + 4) is CodeCheck.ACCEPTED


def test_the_code_is_a_secret_in_the_settings_and_each_kiosk_counts_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIOSK_OPERATOR_CODE", "8642")
    settings = KioskSettings(kiosk_secret="the-kiosk-secret")
    assert "8642" not in repr(settings) and "the-kiosk-secret" not in repr(settings)
    assert isinstance(settings.operator_code, OperatorCode)
    for entry in ("1", "2", "3", "4", "5"):
        settings.operator_code.check(entry)
    assert settings.operator_code.check("8642") is CodeCheck.LOCKED
    assert KioskSettings().operator_code.check("8642") is CodeCheck.ACCEPTED
    monkeypatch.delenv("KIOSK_OPERATOR_CODE")
    assert KioskSettings().operator_code.check("0000") is CodeCheck.ACCEPTED  # the emulator's default


@pytest.mark.anyio
async def test_the_panel_stays_shut_after_five_wrong_codes_even_when_reopened(service: Service, tmp_path: Path) -> None:
    kiosk = make_kiosk(service, "toride-0001", tmp_path)
    app = kiosk.app
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f12")
        await pilot.pause()
        for wrong in ("1111", "2222", "3333", "4444", "5555"):
            await pilot.press(*wrong, "enter")
            await pilot.pause()
        await pilot.press("escape")  # close the login and open it again: the count stays
        await pilot.pause()
        await pilot.press("f12")
        await pilot.pause()
        await pilot.press(*"8642", "enter")
        await pilot.pause(0.2)
        assert not app.screen.query("#paper")  # the panel did not open
        error = app.screen.query_one("#operator-error", Static)
        assert "ロック" in str(error.render())
