"""Small status widgets: the idle countdown and the card on the reader."""

from __future__ import annotations

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
