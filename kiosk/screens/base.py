"""What every step screen shares: the top bar (card, countdown), the title, the body and
the action row with Cancel. Screens only *show* the flow and post what the person did;
the app feeds it to the flow."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Static

from kiosk import flow as f
from kiosk.i18n import has, text
from kiosk.theme import PHASES, phase_of
from kiosk.widgets.status import CardAlarm, CardStatus, Countdown, StepIndicator


class StepScreen(Screen[None]):
    """The screen of one flow step."""

    step: ClassVar[f.Step]
    cancellable: ClassVar[bool] = True
    # The screens before the language choice say their buttons in both languages.
    cancel_key: ClassVar[str] = "common.cancel"
    # The first focusable match gets the focus when the screen appears: each screen names
    # its main button, so Enter (a keyboard, a kiosk's hardware key) works without Tab.
    AUTO_FOCUS: ClassVar[str | None] = ""

    class Acted(Message):
        """The person did something the flow must hear about."""

        def __init__(self, event: f.Event) -> None:
            super().__init__()
            self.event = event

    def __init__(self, flow: f.KioskFlow) -> None:
        super().__init__(name=self.step.value)
        self.flow = flow
        self.language = flow.language
        self.ready = False  # composed and mounted: update_view may query its widgets

    def on_mount(self) -> None:
        # Textual calls this for every class in the MRO, so subclasses keep their own.
        self.ready = True

    def t(self, key: str, **values: object) -> str:
        return text(self.language, key, **values)

    def compose(self) -> ComposeResult:
        with Vertical(id="frame"):
            with Horizontal(id="topbar"):
                yield Static(self.t("app.title"), id="brand")
                yield CardStatus(self.language, self.flow.card_present, id="card-status")
                yield Countdown(self.language, id="countdown")
            phase = phase_of(self.step)
            if phase is not None:
                yield StepIndicator(self.language, [self.t(key) for key, _steps in PHASES], phase, id="phases")
            yield Static(self.t(f"{self.step.value}.title"), id="title")
            if self.flow.card_left_behind:
                yield CardAlarm(self.language, id="card-alarm")
            with VerticalScroll(id="body"):
                yield from self.compose_body()
            with Horizontal(id="actions"):
                yield from self.compose_actions()
                if self.cancellable:
                    yield Button(self.t(self.cancel_key), id="cancel", variant="error")

    def compose_body(self) -> ComposeResult:
        yield from ()

    def compose_actions(self) -> ComposeResult:
        yield from ()

    def update_view(self) -> None:
        """Show flow changes that keep the step (money inserted, pages printed ...). Only
        called once `ready`; a screen that shows changing values also calls it on mount."""

    def why_not(
        self, refusal_code: str | None, widget_id: str, service_words: tuple[str | None, str | None] = (None, None)
    ) -> ComposeResult:
        """Why a choice is unavailable, in plain words: the kiosk's own for the rule
        (利用登録 pending, seal cancelled ...), else the service's (weekday-only hours ...)."""
        if refusal_code is not None and has(self.language, f"refusal.{refusal_code}"):
            yield Static(self.t(f"refusal.{refusal_code}"), id=widget_id, classes="hint")
            return
        words = service_words[0] if self.language == "ja" else service_words[1]
        if words:
            yield Static(words, id=widget_id, classes="hint")

    def act(self, event: f.Event) -> None:
        self.post_message(self.Acted(event))

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.act(f.Pressed(f.Action.CANCEL))

    @on(Button.Pressed, "#back")
    def _back(self) -> None:
        self.act(f.Pressed(f.Action.BACK))

    @on(Button.Pressed, "#next")
    def _next(self) -> None:
        self.act(f.Pressed(f.Action.NEXT))


class BusyScreen(StepScreen):
    """A step where the kiosk works (card, service) and the person waits."""

    def compose_body(self) -> ComposeResult:
        key = f"{self.step.value}.body"
        if has(self.language, key):
            yield Static(self.t(key), classes="message")
