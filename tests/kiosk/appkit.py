"""Helpers of the Pilot tests: a KioskApp on the real service with an in-process virtual
card reader, and waits for the flow to reach a step."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from servicekit import Service
from textual.pilot import Pilot
from textual.widgets import Button

from kiosk import flow as f
from kiosk.app import KioskApp
from kiosk.card import VirtualCardReader
from kiosk.config import KioskSettings, build_devices


@dataclass
class Kiosk:
    app: KioskApp
    reader: VirtualCardReader
    printed: Path
    messages: list


def make_kiosk(
    service: Service,
    resident_id: str,
    tmp_path: Path,
    *,
    placed: bool = False,
    server_url: str | None = None,
    **settings: object,
) -> Kiosk:
    printed = tmp_path / "printed"
    kiosk_settings = KioskSettings(
        server_url=server_url or service.url,
        kiosk_id=service.kiosk_id,
        kiosk_secret=service.kiosk_secret,
        printer_dir=printed,
        operator_code="8642",
        **settings,
    )  # type: ignore[arg-type]
    reader = VirtualCardReader(str(service.card(resident_id).path), placed=placed)
    devices = build_devices(kiosk_settings, reader=reader)
    return Kiosk(KioskApp(devices, tick_seconds=0.2), reader, printed, [])


async def until(pilot: Pilot, step: f.Step, timeout: float = 15.0) -> None:
    """Wait until the flow shows `step` (effects run in worker threads)."""
    app = pilot.app
    assert isinstance(app, KioskApp)
    deadline = time.monotonic() + timeout
    while app.flow.step is not step or app.screen.name != step.value:
        if time.monotonic() > deadline:
            raise AssertionError(f"stuck at {app.flow.step} (failure {app.flow.failure}), waiting for {step}")
        await pilot.pause(0.05)
    await pilot.pause()


async def until_true(pilot: Pilot, predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("the kiosk never reached the expected state")
        await pilot.pause(0.05)
    await pilot.pause()


async def click(pilot: Pilot, selector: str) -> None:
    """Click a button like a finger would (scrolled into view first)."""
    button = pilot.app.screen.query_one(selector, Button)
    button.scroll_visible(animate=False, immediate=True)
    await pilot.pause()
    assert not button.disabled, f"{selector} is disabled"
    await pilot.click(selector)
    await pilot.pause()


async def start_to_card(pilot: Pilot, language: str = "ja") -> None:
    """From the start screen to the place-card step."""
    await click(pilot, "#gyosei")
    await until(pilot, f.Step.SERVICE_MENU)
    await click(pilot, "#certificates")
    await until(pilot, f.Step.LANGUAGE)
    await click(pilot, f"#lang-{language}")
    await until(pilot, f.Step.TERMS)
    await click(pilot, "#accept")


async def order_one_copy(pilot: Pilot, kind: str) -> None:
    """From the municipality step to payment: the first municipality, `kind`, the persons
    and copies as offered, confirmed."""
    await click(pilot, "#municipality-0")
    await until(pilot, f.Step.CERTIFICATE)
    await click(pilot, f"#kind-{kind}")
    await until_true(pilot, lambda: pilot.app.flow.step in (f.Step.PERSONS, f.Step.COPIES))
    if pilot.app.flow.step is f.Step.PERSONS:
        await click(pilot, "#next")
        await until(pilot, f.Step.COPIES)
    await click(pilot, "#next")
    await until(pilot, f.Step.CONFIRM)
    await click(pilot, "#confirm")
    await until(pilot, f.Step.PAYMENT)


async def to_municipality(pilot: Pilot, kiosk: Kiosk, pin: str) -> None:
    await start_to_card(pilot)
    await until(pilot, f.Step.PLACE_CARD)
    kiosk.reader.place()
    await until(pilot, f.Step.PIN)
    await pilot.press(*pin, "enter")
    await until(pilot, f.Step.REMOVE_CARD)
    kiosk.reader.take()
    await until(pilot, f.Step.MUNICIPALITY)


def steps_entered(messages: list) -> list[f.Step]:
    return [m.step for m in messages if isinstance(m, KioskApp.StepEntered)]
