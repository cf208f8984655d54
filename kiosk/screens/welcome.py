"""Start, 行政サービス menu, language and terms."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.widgets import Button, Static

from kiosk import flow as f
from kiosk.screens.base import StepScreen


class StartScreen(StepScreen):
    step = f.Step.START
    AUTO_FOCUS = "#gyosei"  # the main button: Enter works without Tab
    cancellable = False

    def compose_body(self) -> ComposeResult:
        yield Button(self.t("start.gyosei"), id="gyosei", variant="primary", classes="choice")
        yield Button(self.t("start.copy"), id="copy", classes="choice", disabled=True)

    @on(Button.Pressed, "#gyosei")
    def _gyosei(self) -> None:
        self.act(f.Pressed(f.Action.GYOSEI))


class ServiceMenuScreen(StepScreen):
    step = f.Step.SERVICE_MENU
    AUTO_FOCUS = "#certificates"  # the main button: Enter works without Tab

    def compose_body(self) -> ComposeResult:
        out_of_paper = self.flow.out_of_paper
        yield Button(
            self.t("service_menu.certificates"),
            id="certificates",
            variant="primary",
            classes="choice",
            disabled=out_of_paper,
        )
        if out_of_paper:
            # Said before the visit starts, not after a PIN and the choices.
            yield Static(self.t("service_menu.out_of_paper"), id="certificates-why", classes="warning")
        yield Button(
            self.t("service_menu.honseki_registration"), id="honseki-registration", classes="choice", disabled=True
        )

    cancel_key = "common.cancel_bilingual"

    def compose_actions(self) -> ComposeResult:
        yield Button(self.t("common.back_bilingual"), id="back")

    @on(Button.Pressed, "#certificates")
    def _certificates(self) -> None:
        self.act(f.Pressed(f.Action.CERTIFICATES))


class LanguageScreen(StepScreen):
    step = f.Step.LANGUAGE
    cancel_key = "common.cancel_bilingual"
    AUTO_FOCUS = "#lang-ja"  # the main button: Enter works without Tab

    def compose_body(self) -> ComposeResult:
        yield Button(self.t("language.ja"), id="lang-ja", variant="primary", classes="choice")
        yield Button(self.t("language.en"), id="lang-en", variant="primary", classes="choice")

    @on(Button.Pressed, "#lang-ja, #lang-en")
    def _language(self, event: Button.Pressed) -> None:
        self.act(f.LanguageChosen((event.button.id or "").removeprefix("lang-")))


class TermsScreen(StepScreen):
    step = f.Step.TERMS
    AUTO_FOCUS = "#accept"  # the main button: Enter works without Tab

    def compose_body(self) -> ComposeResult:
        yield Static(self.t("terms.body"), classes="message")

    def compose_actions(self) -> ComposeResult:
        yield Button(self.t("terms.accept"), id="accept", variant="success")
        yield Button(self.t("terms.decline"), id="decline")

    @on(Button.Pressed, "#accept")
    def _accept(self) -> None:
        self.act(f.Pressed(f.Action.ACCEPT))

    @on(Button.Pressed, "#decline")
    def _decline(self) -> None:
        self.act(f.Pressed(f.Action.DECLINE))
