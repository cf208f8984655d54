"""Printing with progress, then the reminder to take everything (and the 利用明細)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.widgets import Button, ProgressBar, Static

from kiosk import flow as f
from kiosk.screens.base import StepScreen
from kiosk.screens.order import kind_title


class PrintingScreen(StepScreen):
    step = f.Step.PRINTING
    cancellable = False

    def compose_body(self) -> ComposeResult:
        yield ProgressBar(total=max(1, self.flow.total_pages), show_eta=False, id="progress")
        yield Static("", id="pages")

    def on_mount(self) -> None:
        self.update_view()

    def update_view(self) -> None:
        total = max(1, self.flow.total_pages)
        bar = self.query_one(ProgressBar)
        bar.update(total=total, progress=self.flow.printed_pages)
        self.query_one("#pages", Static).update(self.t("printing.progress", done=self.flow.printed_pages, total=total))


class TakeItemsScreen(StepScreen):
    step = f.Step.TAKE_ITEMS
    AUTO_FOCUS = "#acknowledge"  # the main button: Enter works without Tab
    cancellable = False

    def compose_body(self) -> ComposeResult:
        receipt = self.flow.receipt
        assert receipt is not None
        yield Static(self.t("take_items.certificates"), classes="big")
        if receipt.change_yen:
            yield Static(self.t("take_items.change", change=receipt.change_yen), id="change", classes="big")
        else:
            yield Static(self.t("take_items.no_change"), id="change")
        yield Static(self.t("take_items.card"))
        yield Static(
            self.t(
                "take_items.receipt",
                title=kind_title(self.language, receipt.kind),
                copies=receipt.copies,
                fee=receipt.fee_yen,
                paid=receipt.paid_yen,
                change=receipt.change_yen,
            ),
            id="receipt",
            classes="receipt",
        )

    def compose_actions(self) -> ComposeResult:
        yield Button(self.t("take_items.ok"), id="acknowledge", variant="success")

    @on(Button.Pressed, "#acknowledge")
    def _acknowledge(self) -> None:
        self.act(f.Pressed(f.Action.ACKNOWLEDGE))
