"""Ordering (the service renders), payment with the simulated acceptor, settling."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Static

from kiosk import flow as f
from kiosk.screens.base import BusyScreen, StepScreen


class OrderingScreen(BusyScreen):
    step = f.Step.ORDERING


class PaymentScreen(StepScreen):
    step = f.Step.PAYMENT
    AUTO_FOCUS = ".cash"  # the main button: Enter works without Tab

    def compose_body(self) -> ComposeResult:
        yield Static(self.t("payment.fee", fee=self.flow.fee_yen), id="fee", classes="big")
        yield Static("", id="paid")
        yield Static("", id="remaining")
        yield Static(self.t("payment.hint"), classes="hint")
        yield Static(self.t("payment.cancel_returns"), id="cancel-returns", classes="hint")
        with Horizontal(id="cash"):
            for amount in f.DENOMINATIONS:
                yield Button(self.t("payment.insert", amount=amount), id=f"cash-{amount}", classes="cash")

    def on_mount(self) -> None:
        self.update_view()

    def update_view(self) -> None:
        paid = self.flow.paid_yen
        self.query_one("#paid", Static).update(self.t("payment.paid", paid=paid))
        remaining = max(0, self.flow.fee_yen - paid)
        self.query_one("#remaining", Static).update(self.t("payment.remaining", remaining=remaining))

    @on(Button.Pressed, ".cash")
    def _cash(self, event: Button.Pressed) -> None:
        self.act(f.CashInserted(int((event.button.id or "").removeprefix("cash-"))))


class SettlingScreen(BusyScreen):
    step = f.Step.SETTLING
    cancellable = False
