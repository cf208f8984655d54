"""The PIN keypad (テンキー): touch buttons and the keyboard, shown masked.

The digits live only in this widget until `take_pin()` hands them over and forgets them;
the Submitted message carries no PIN, so no message log can hold one.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.events import Key
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Button, Static

from kiosk.i18n import text

PIN_LENGTH = 4
MASK = "●"
EMPTY = "○"


class Keypad(Vertical, can_focus=True):
    """Ten digits, delete, clear and enter. Posts Keypad.Submitted when 4 digits are entered."""

    class Submitted(Message):
        """Four digits were entered and confirmed; call `take_pin()` on the keypad."""

        def __init__(self, keypad: Keypad) -> None:
            super().__init__()
            self.keypad = keypad

    entered: reactive[int] = reactive(0)  # how many digits, never which

    def __init__(self, language: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._language = language
        self._digits: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static(self._mask(), id="pin-mask")
        with Grid(id="keypad-grid"):
            for digit in "123456789":
                yield Button(digit, id=f"digit-{digit}", classes="digit")
            yield Button(text(self._language, "keypad.clear"), id="keypad-clear", classes="digit")
            yield Button("0", id="digit-0", classes="digit")
            yield Button(text(self._language, "keypad.delete"), id="keypad-delete", classes="digit")
        yield Button(text(self._language, "keypad.enter"), id="keypad-enter", variant="primary")

    def _mask(self) -> str:
        return " ".join(MASK if i < self.entered else EMPTY for i in range(PIN_LENGTH))

    def watch_entered(self) -> None:
        if self.is_mounted:
            self.query_one("#pin-mask", Static).update(self._mask())

    def press_digit(self, digit: str) -> None:
        if len(self._digits) < PIN_LENGTH and digit in "0123456789" and len(digit) == 1:
            self._digits.append(digit)
            self.entered = len(self._digits)

    def delete(self) -> None:
        if self._digits:
            self._digits.pop()
        self.entered = len(self._digits)

    def clear(self) -> None:
        self._digits.clear()
        self.entered = 0

    def submit(self) -> None:
        if len(self._digits) == PIN_LENGTH:
            self.post_message(self.Submitted(self))

    def take_pin(self) -> str:
        """The entered PIN, forgotten here at once."""
        pin = "".join(self._digits)
        self.clear()
        return pin

    @on(Button.Pressed, ".digit")
    def _digit_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        button_id = event.button.id or ""
        if button_id == "keypad-clear":
            self.clear()
        elif button_id == "keypad-delete":
            self.delete()
        else:
            self.press_digit(button_id.removeprefix("digit-"))

    @on(Button.Pressed, "#keypad-enter")
    def _enter_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.submit()

    def on_key(self, event: Key) -> None:
        if event.character is not None and event.character.isdigit() and event.character.isascii():
            self.press_digit(event.character)
        elif event.key == "backspace":
            self.delete()
        elif event.key == "enter":
            self.submit()
        else:
            return
        event.stop()
        event.prevent_default()
