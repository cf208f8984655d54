"""Small status widgets: the idle countdown, the card on the reader, where the visit is."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Static

from kiosk.i18n import text


class Countdown(Static):
    """Seconds left before the idle time-out; empty where no time-out applies."""

    seconds: reactive[int | None] = reactive(None)

    def __init__(self, language: str, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._language = language

    def watch_seconds(self, seconds: int | None) -> None:
        self.update("" if seconds is None else text(self._language, "common.countdown", seconds=seconds))
        self.set_class(seconds is not None and seconds <= 10, "urgent")


class CardAlarm(Static):
    """A card is still on the reader after its visit ended: a line in the alarm colours and
    the terminal bell, repeated until the card is taken (the screen is then redrawn without
    this widget, which stops its timer)."""

    BELL_SECONDS = 2.0

    def __init__(self, language: str, *, id: str | None = None) -> None:
        super().__init__(text(language, "card_alarm.take_card"), id=id)

    def on_mount(self) -> None:
        self.app.bell()
        self.set_interval(self.BELL_SECONDS, self.app.bell)


class CardStatus(Static):
    """Whether a card is on the reader."""

    present: reactive[bool] = reactive(False)

    def __init__(self, language: str, present: bool, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._language = language
        self.set_reactive(CardStatus.present, present)

    def on_mount(self) -> None:
        self.watch_present(self.present)

    def watch_present(self, present: bool) -> None:
        self.update(text(self._language, "card_status.present" if present else "card_status.absent"))
        self.set_class(present, "placed")


class StepIndicator(Horizontal):
    """The visit's phases in a row (1 カード・暗証番号 › 2 証明書を選ぶ › ...), the current one
    marked, the ones behind ticked: a resident sees where they are and what is left."""

    def __init__(self, language: str, labels: list[str], current: int, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._language = language
        self._labels = labels
        self._current = current

    def compose(self) -> ComposeResult:
        for index, label in enumerate(self._labels):
            if index:
                yield Static("›", classes="phase-separator")
            state = "done" if index < self._current else "current" if index == self._current else "todo"
            mark = "✓" if state == "done" else str(index + 1)
            yield Static(f"{mark} {label}", id=f"phase-{index}", classes=f"phase {state}")
