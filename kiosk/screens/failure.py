"""Every way a visit can end early has its own message here (i18n `failure.<code>`)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.widgets import Button, Static

from kiosk import flow as f
from kiosk.i18n import has
from kiosk.screens.base import StepScreen


class FailedScreen(StepScreen):
    step = f.Step.FAILED
    AUTO_FOCUS = "#acknowledge"  # the main button: Enter works without Tab
    cancellable = False

    def compose_body(self) -> ComposeResult:
        flow = self.flow
        assert flow.failure is not None
        refusal = f"refusal.{flow.refusal_code}"
        if flow.refusal_code is not None and has(self.language, refusal):
            # The kiosk's own words for a rule it knows: the service's message is not
            # repeated, and a refusal never reads as a fault ("try again later").
            yield Static(self.t(refusal), id="failure", classes=f"error {flow.failure.value}")
        else:
            yield Static(self.t(f"failure.{flow.failure.value}"), id="failure", classes=f"error {flow.failure.value}")
            yield from self._service_says()
        if flow.refunded_yen:
            yield Static(self.t("failed.refunded", amount=flow.refunded_yen), id="refunded", classes="big")

    def _service_says(self) -> ComposeResult:
        flow = self.flow
        if flow.failure_message is not None:
            message = flow.failure_message[0] if self.language == "ja" else flow.failure_message[1]
            if message:
                yield Static(self.t("failed.service_says", message=message), id="service-message")

    def compose_actions(self) -> ComposeResult:
        yield Button(self.t("failed.ok"), id="acknowledge", variant="primary")

    @on(Button.Pressed, "#acknowledge")
    def _acknowledge(self) -> None:
        self.act(f.Pressed(f.Action.ACKNOWLEDGE))
