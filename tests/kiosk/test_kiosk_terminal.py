"""The terminal the kiosk's screen is drawn on: no log line is written over it, a crash
leaves one line there, never Textual's report with every frame's local variables (the
kiosk secret, the PIN), and a card left on the reader rings its bell until it is taken.

The kiosk runs headless through `run_kiosk`, as `kiosk run` runs it, with a real virtual
card in an in-process reader; the service is a closed port on 127.0.0.1, so the visit
really fails and the runner really logs it. Everything the process writes to the terminal
is captured at the file-descriptor level.
"""

from __future__ import annotations

import logging
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flowkit import to_pin
from test_kiosk_screens import kiosk_at
from textual.pilot import Pilot

from kiosk import flow as f
from kiosk.app import run_kiosk
from kiosk.card import VirtualCardReader
from kiosk.config import KioskDevices, KioskSettings, build_devices
from kiosk.screens.card import PinScreen
from kiosk.widgets.keypad import Keypad
from kiosk.widgets.status import CardAlarm
from konbini_testkit.cards import PIN, make_card

SECRET = "s3cret-kiosk-credential"


@pytest.fixture
def terminal_logging() -> Iterator[None]:
    """The root logger as `kiosk`'s main() sets it up: to the terminal (stderr)."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    saved_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield
    root.removeHandler(handler)
    root.setLevel(saved_level)


def _devices(tmp_path: Path, *, log_file: Path | None, placed: bool = True) -> KioskDevices:
    card = make_card(tmp_path / "card.json")
    settings = KioskSettings(
        server_url="http://127.0.0.1:9",
        kiosk_id="TERM-01",
        kiosk_secret=SECRET,
        printer_dir=tmp_path / "printed",
        log_file=log_file,
        http_timeout=2.0,
    )
    return build_devices(settings, reader=VirtualCardReader(str(card), placed=placed))


async def _until(pilot: Pilot, predicate, seconds: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError("the kiosk never got there")


async def _visit_to_the_service(pilot: Pilot) -> None:
    for button in ("#gyosei", "#certificates", "#lang-ja", "#accept"):
        await pilot.click(button)
        await pilot.pause()


def test_log_lines_go_to_the_log_file_while_the_screen_runs_never_to_the_terminal(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], terminal_logging: None
) -> None:
    log_file = tmp_path / "logs" / "kiosk.log"
    devices = _devices(tmp_path, log_file=log_file)

    async def visit(pilot: Pilot) -> None:
        await _visit_to_the_service(pilot)
        await _until(pilot, lambda: pilot.app.flow.failure is f.Failure.SERVICE_UNREACHABLE)
        pilot.app.exit()

    try:
        assert run_kiosk(devices, headless=True, auto_pilot=visit) == 0
    finally:
        devices.close()
    out, err = capfd.readouterr()
    logged = log_file.read_text(encoding="utf-8")
    assert "service call for StartTransaction failed: unreachable" in logged
    assert "StartTransaction" not in out + err and "WARNING" not in out + err
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(log_file.parent.stat().st_mode) == 0o700
    logging.getLogger("kiosk").warning("after the screen closed")
    assert "after the screen closed" in capfd.readouterr().err  # the terminal handler is back


def test_without_a_log_file_the_screen_logs_to_textual_not_the_terminal(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], terminal_logging: None
) -> None:
    devices = _devices(tmp_path, log_file=None)

    async def visit(pilot: Pilot) -> None:
        await _visit_to_the_service(pilot)
        await _until(pilot, lambda: pilot.app.flow.failure is f.Failure.SERVICE_UNREACHABLE)
        pilot.app.exit()

    try:
        assert run_kiosk(devices, headless=True, auto_pilot=visit) == 0
    finally:
        devices.close()
    out, err = capfd.readouterr()
    assert "StartTransaction" not in out + err and "WARNING" not in out + err


def test_a_crash_leaves_one_line_on_the_terminal_and_no_local_variables(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, terminal_logging: None
) -> None:
    log_file = tmp_path / "kiosk.log"
    devices = _devices(tmp_path, log_file=log_file, placed=False)
    secret = devices.settings.kiosk_secret

    def faulty_pin_step(self: f.KioskFlow, event: f.Event) -> list[f.Effect]:
        pin = event.pin  # type: ignore[attr-defined]  # noqa: F841 - locals a crash report must not show
        credential = secret  # noqa: F841 - as a frame of the service client would hold it
        raise RuntimeError("a fault injected into the PIN step")

    monkeypatch.setattr(f.KioskFlow, "_on_pin", faulty_pin_step)

    async def crash(pilot: Pilot) -> None:
        to_pin(pilot.app.flow)  # the card's and the service's answers as events: no service here
        pilot.app._sync()
        await _until(pilot, lambda: isinstance(pilot.app.screen, PinScreen) and pilot.app.screen.ready)
        keypad = pilot.app.screen.query_one(Keypad)
        for digit in PIN:
            keypad.press_digit(digit)
        # Submitted without awaiting: the pilot must not wait on an app that is about to crash.
        keypad.submit()

    try:
        assert run_kiosk(devices, headless=True, auto_pilot=crash) == 1
    finally:
        devices.close()
    out, err = capfd.readouterr()
    terminal = out + err
    assert terminal.strip().splitlines() == ["kiosk: stopped after an unexpected error (RuntimeError); see the log"]
    logged = log_file.read_text(encoding="utf-8")
    assert "a fault injected into the PIN step" in logged and "Traceback" in logged
    assert SECRET not in logged and f"'{PIN}'" not in logged


@pytest.mark.anyio
async def test_a_card_left_behind_rings_the_bell_again_and_again_until_it_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = kiosk_at("start_card_left_behind", "ja", tmp_path)
    rings: list[float] = []
    monkeypatch.setattr(type(app), "bell", lambda self: rings.append(time.monotonic()))
    monkeypatch.setattr(CardAlarm, "BELL_SECONDS", 0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.7)
        assert app.screen.query("#card-alarm") and len(rings) >= 3
        app.feed(f.CardRemoved())
        await pilot.pause(0.1)
        assert not app.screen.query("#card-alarm")
        rung = len(rings)
        await pilot.pause(0.5)
        assert len(rings) == rung  # taken: silence
