"""The Textual kiosk: one screen per flow step, driven by kiosk.flow.

The app owns no rules. Screens post what the person did (`StepScreen.Acted`); the app feeds
it to the flow, runs the effects the flow asks for in thread workers (card, HTTP, printer),
and feeds their results back (`KioskApp.Happened`). When the step changes, the screen is
replaced; otherwise the screen updates in place.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from typing import Any, ClassVar

from textual import events, on, work
from textual.app import App, ScreenStackError
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.worker import get_current_worker

from cardreader.status import CardError
from kiosk import flow as f
from kiosk.config import KioskDevices
from kiosk.logs import logging_beside_the_screen
from kiosk.payment import CashError
from kiosk.screens import screen_for
from kiosk.screens.base import StepScreen
from kiosk.screens.operator import (
    OperatorLoginScreen,
    OperatorScreen,
    PaperLoaded,
    demo_cards,
    tray_for,
)
from kiosk.theme import KONBINI_THEME
from kiosk.widgets.status import CardStatus, Countdown

logger = logging.getLogger(__name__)

CARD_POLL_SECONDS = 0.5


class KioskApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "konbini-kiosk"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f12", "operator", "Operator", show=False, id="operator"),
        Binding("escape", "cancel", "Cancel", show=False, id="cancel"),
    ]

    class Happened(Message):
        """A card event or an effect's result arrived from a worker thread."""

        def __init__(self, event: f.Event) -> None:
            super().__init__()
            self.event = event

    class StepEntered(Message):
        """The kiosk now shows `step` (and, on FAILED, why)."""

        def __init__(self, step: f.Step, failure: f.Failure | None) -> None:
            super().__init__()
            self.step = step
            self.failure = failure

    def __init__(
        self,
        devices: KioskDevices,
        *,
        flow: f.KioskFlow | None = None,
        watch_card: bool = True,
        tick_seconds: float = 1.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__()
        self.devices = devices
        self.flow = flow or f.KioskFlow(timeouts=devices.settings.timeouts(), **({"clock": clock} if clock else {}))
        self._watch = watch_card
        self._tick_seconds = tick_seconds
        self._shown: tuple[object, ...] | None = None
        self._operator_open = False
        self.tray = tray_for(devices.runner.reader, devices.settings.vpcd_port)
        self._stop = threading.Event()
        self.register_theme(KONBINI_THEME)
        self.theme = KONBINI_THEME.name

    # -- life cycle ----------------------------------------------------------------------
    COMPACT_ROWS = 30  # below this many rows (80x24 ...) titles lose their spacing, not the keypad its keys

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.height < self.COMPACT_ROWS, "-compact")

    def on_mount(self) -> None:
        self.set_class(self.size.height < self.COMPACT_ROWS, "-compact")
        self.flow.handle(f.PaperChanged(self.devices.runner.printer.sheets))
        self._shown = self._view_key()
        self.push_screen(screen_for(self.flow))
        self.post_message(self.StepEntered(self.flow.step, self.flow.failure))
        if self._watch:
            self._watch_card()
        if self._tick_seconds:
            self.set_interval(self._tick_seconds, self._tick)
        self._deliver_outcome_reports()

    @work(thread=True, group="reports")
    def _deliver_outcome_reports(self) -> None:
        """What the last run printed or refunded reaches the service (a kiosk restarted
        after a crash); the next visit's start retries what is still pending."""
        runner = self.devices.runner
        runner.reports.deliver(runner.client)

    def on_unmount(self) -> None:
        self._stop.set()
        # Leaving mid-visit: give the money back and end the transaction on the service
        # now, rather than leave it open until it expires.
        if self.flow.step not in (f.Step.START, f.Step.FAILED, f.Step.TAKE_ITEMS):
            for effect in self.flow.handle(f.Pressed(f.Action.CANCEL)):
                if effect.ticket == 0:
                    self.devices.runner.run(effect, lambda _event: None)
        try:
            self.tray.remove()
        except OSError:
            logger.warning("the demo card could not be taken out of the tray")

    def _fatal_error(self) -> None:
        # Textual's own crash report prints every frame's local variables: the kiosk
        # secret in the client's settings, the PIN in the keypad's hands. The log gets
        # the traceback (frames, no locals); the terminal gets one line.
        error = sys.exc_info()[1] or self._exception
        logger.critical("the kiosk stopped after an unexpected error", exc_info=error)
        self.panic(f"kiosk: stopped after an unexpected error ({type(error).__name__}); see the log")

    # -- the flow ------------------------------------------------------------------------
    def feed(self, event: f.Event) -> None:
        """Give the flow one event, start the effects it asks for, show the result."""
        if isinstance(event, f.CashInserted):
            if self.flow.step is not f.Step.PAYMENT:
                return  # the acceptor's slot is closed outside the payment step
            try:
                self.devices.runner.acceptor.insert(event.amount_yen)
            except CashError:
                return
        for effect in self.flow.handle(event):
            self._run_effect(effect)
        self._sync()

    @work(thread=True, group="effects")
    def _run_effect(self, effect: f.Effect) -> None:
        self.devices.runner.run(effect, self._emit)

    def _emit(self, event: f.Event) -> None:
        self.post_message(self.Happened(event))

    @on(Happened)
    def _happened(self, message: Happened) -> None:
        self.feed(message.event)

    @on(StepScreen.Acted)
    def _acted(self, message: StepScreen.Acted) -> None:
        self.feed(message.event)

    @on(StepEntered)
    def _log_step(self, message: StepEntered) -> None:
        # The step's name only (no person's data): an operator or a browser test follows
        # a kiosk session by its log.
        logger.info("screen %s", message.step.value)

    @on(PaperLoaded)
    def _paper(self, message: PaperLoaded) -> None:
        self.feed(f.PaperChanged(message.sheets))

    def _tick(self) -> None:
        self.feed(f.Tick())

    def _view_key(self) -> tuple[object, ...]:
        flow = self.flow
        return (
            flow.step,
            flow.language,
            flow.failure,
            flow.tries_left if flow.step is f.Step.PIN else None,
            flow.pin_error,
            flow.card_left_behind,
            flow.out_of_paper if flow.step is f.Step.SERVICE_MENU else None,
        )

    def _sync(self) -> None:
        if self._operator_open:
            return  # the panel is on top; the step screen catches up when it closes
        key = self._view_key()
        if key != self._shown:
            self._shown = key
            self.switch_screen(screen_for(self.flow))
            self.post_message(self.StepEntered(self.flow.step, self.flow.failure))
            return
        try:
            screen = self.screen
        except ScreenStackError:
            return  # between screens (a switch in flight, or the app closing): nothing to update
        if isinstance(screen, StepScreen) and screen.ready:
            # A result can arrive between switching screens and the new one's mount
            # (printing progress right after the print started): it catches up on mount.
            screen.update_view()
            left = self.flow.seconds_left()
            for countdown in screen.query(Countdown):
                countdown.seconds = None if left is None else int(left + 0.999)
            for status in screen.query(CardStatus):
                status.present = self.flow.card_present

    # -- the card reader -----------------------------------------------------------------
    @work(thread=True, group="card", exclusive=True)
    def _watch_card(self) -> None:
        worker = get_current_worker()
        reader = self.devices.runner.reader
        while not worker.is_cancelled and not self._stop.is_set():
            try:
                change = reader.wait_change(CARD_POLL_SECONDS)
            except CardError as exc:
                if self._stop.is_set():
                    break  # closing the devices interrupted the wait: not a reader fault
                logger.warning("card reader: %s", type(exc).__name__)
                self._stop.wait(1.0)
                continue
            if change is not None:
                self._emit(f.CardPlaced() if change else f.CardRemoved())

    # -- bindings ------------------------------------------------------------------------
    def action_cancel(self) -> None:
        screen = self.screen
        if isinstance(screen, StepScreen) and screen.cancellable:
            self.feed(f.Pressed(f.Action.CANCEL))

    def action_operator(self) -> None:
        if self._operator_open:
            return
        self._operator_open = True
        settings = self.devices.settings
        self.push_screen(OperatorLoginScreen(self.flow.language, settings.operator_code), self._logged_in)

    def _logged_in(self, ok: bool | None) -> None:
        if not ok:
            self._operator_closed(None)
            return
        cards = demo_cards(self.devices.settings.demo_cards)
        screen = OperatorScreen(self.flow.language, self.devices, self.tray, cards, lambda: self.flow.card_present)
        self.push_screen(screen, self._operator_closed)

    def _operator_closed(self, _result: None) -> None:
        self._operator_open = False
        self._sync()


def run_kiosk(devices: KioskDevices, **run_args: Any) -> int:
    """Run the kiosk's screen until it is closed; the exit status (1 after a crash). While
    it runs, logs go to the settings' log file or Textual's log, never over the screen.
    `run_args` go to `App.run` (tests run it headless). Raises OSError for a log file that
    cannot be opened."""
    app = KioskApp(devices)
    with logging_beside_the_screen(app, devices.settings.log_file):
        app.run(**run_args)
    return app.return_code or 0
