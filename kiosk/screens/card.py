"""Card steps: place, reading, PIN, checking, remove."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from kiosk import flow as f
from kiosk.screens.base import BusyScreen, StepScreen
from kiosk.widgets.keypad import Keypad


class PlaceCardScreen(StepScreen):
    step = f.Step.PLACE_CARD
    AUTO_FOCUS = "#use-card"  # the main button: Enter works without Tab

    def compose_body(self) -> ComposeResult:
        if self.flow.card_left_behind:
            # The card on the reader was there before this visit began: not read unless
            # it is put back, or its holder says it is theirs.
            yield Static(self.t("place_card.left_behind"), id="left-behind", classes="warning")
        else:
            yield Static(self.t("place_card.body"), classes="message")

    def compose_actions(self) -> ComposeResult:
        if self.flow.card_left_behind:
            yield Button(self.t("place_card.use_card"), id="use-card", variant="primary")

    @on(Button.Pressed, "#use-card")
    def _use_card(self) -> None:
        self.act(f.Pressed(f.Action.USE_CARD))


class ReadingCardScreen(BusyScreen):
    step = f.Step.READING_CARD


class PinScreen(StepScreen):
    step = f.Step.PIN

    def compose_body(self) -> ComposeResult:
        # The keypad and, beside it, what the person must see before typing: a wrong PIN,
        # the tries left, the last-try warning. Side by side they fit 80x24 without
        # scrolling, where a column would scroll them away to show the focused keypad.
        with Horizontal(id="pin-layout"):
            yield Keypad(self.language, id="keypad")
            with Vertical(id="pin-info"):
                if self.flow.pin_error:
                    yield Static(self.t("pin.wrong"), id="pin-wrong", classes="error")
                if self.flow.tries_left is not None:
                    yield Static(self.t("pin.tries_left", tries=self.flow.tries_left), id="tries-left", classes="big")
                    if self.flow.tries_left == 1:
                        yield Static(self.t("pin.last_try"), id="last-try", classes="warning")
                yield Static(self.t("pin.body"), classes="message")

    def on_mount(self) -> None:
        self.query_one(Keypad).focus()

    @on(Keypad.Submitted)
    def _submitted(self, message: Keypad.Submitted) -> None:
        # The PIN goes from the keypad straight into the event; nothing else keeps it.
        self.act(f.PinEntered(message.keypad.take_pin()))


class AuthenticatingScreen(BusyScreen):
    step = f.Step.AUTHENTICATING


class RemoveCardScreen(StepScreen):
    step = f.Step.REMOVE_CARD

    def compose_body(self) -> ComposeResult:
        yield Static(self.t("remove_card.body"), classes="message")
        if _has_demo_tray(self):
            # A trainer's hand is the tray: say where it is, or the visit stalls here.
            yield Static(self.t("remove_card.demo_hint"), classes="hint", id="demo-hint")


def _has_demo_tray(screen: StepScreen) -> bool:
    """Whether the kiosk runs with a demo card tray (the operator panel places and takes cards)."""
    devices = getattr(screen.app, "devices", None)
    return devices is not None and devices.settings.demo_cards is not None
