"""The operator panel (係員メニュー), behind a key and a code.

It shows the kiosk's health and the outcomes of recent visits, never a person's data; in
demo mode it is also the card tray: it puts one of the demo virtual cards into the vpcd
reader through the bridge, so the kiosk reads it through pcscd exactly like a real card.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from kiosk.card import CardReader, TrayReader
from kiosk.config import CodeCheck, KioskDevices, OperatorCode
from kiosk.democards import DemoCardEntry, DemoIndexError, read_index
from kiosk.i18n import has, text
from konbini_common.cardfile import CardFileError
from konbini_common.japan import JST

if TYPE_CHECKING:  # imported at run time where a card is placed
    from cardreader.virtualcard import VpcdBridge

logger = logging.getLogger(__name__)


def demo_cards(folder: Path | None) -> list[DemoCardEntry]:
    """The demo cards of the tray; empty without a folder or a readable index."""
    if folder is None:
        return []
    try:
        return read_index(folder)
    except DemoIndexError as exc:
        logger.warning("%s", exc)
        return []


def outcome_words(language: str, code: str) -> str:
    """A visit's outcome as the operator reads it: the kiosk's words for the failure or the
    rule, with the code beside them (what the service's records and logs say)."""
    for key in (f"operator.outcome_{code}", f"failure.{code}", f"refusal.{code}"):
        if has(language, key):
            return f"{text(language, key)} ({code})"
    return code


class CardTray(ABC):
    """The operator's demo card tray: one demo card at a time on the kiosk's reader."""

    current: DemoCardEntry | None = None

    @abstractmethod
    def place(self, card: DemoCardEntry) -> None:
        """Put `card` on the reader (after taking off the one there). Raises
        CardFileError (the card file is missing or damaged), OSError (no reader to put it in)."""

    @abstractmethod
    def remove(self) -> None:
        """Take the card off the reader, if one is there. Raises OSError."""


class VpcdTray(CardTray):
    """The tray of a kiosk on pcscd: the card goes into the vpcd reader through the bridge,
    so the kiosk reads it through PC/SC exactly like a real card."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._bridge: VpcdBridge | None = None
        self.current = None

    def place(self, card: DemoCardEntry) -> None:
        from cardreader.virtualcard import VirtualCard, VpcdBridge

        self.remove()
        bridge = VpcdBridge(VirtualCard(card.path), port=self.port)
        bridge.insert()
        self._bridge, self.current = bridge, card

    def remove(self) -> None:
        bridge = self._bridge
        self._bridge, self.current = None, None
        if bridge is not None:
            bridge.remove()


class ReaderTray(CardTray):
    """The tray of a kiosk whose reader is in this process (`--reader tray`, the browser
    kiosk): each kiosk session has its own, shared with no other session."""

    def __init__(self, reader: TrayReader) -> None:
        self._reader = reader
        self.current = None

    def place(self, card: DemoCardEntry) -> None:
        self.current = None
        self._reader.place(card.path)
        self.current = card

    def remove(self) -> None:
        self.current = None
        self._reader.take()


def tray_for(reader: CardReader, vpcd_port: int) -> CardTray:
    """The tray that puts demo cards on `reader`."""
    return ReaderTray(reader) if isinstance(reader, TrayReader) else VpcdTray(vpcd_port)


class PaperLoaded(Message):
    """The operator changed the paper level (sheets)."""

    def __init__(self, sheets: int) -> None:
        super().__init__()
        self.sheets = sheets


class OperatorLoginScreen(ModalScreen[bool]):
    """Asks for the operator code; dismisses with whether it was right."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close", show=False)]

    def __init__(self, language: str, code: OperatorCode) -> None:
        super().__init__()
        self.language = language
        self._code = code

    def compose(self) -> ComposeResult:
        with Vertical(id="operator-login", classes="panel"):
            yield Static(text(self.language, "operator.login_title"), classes="title")
            yield Input(password=True, placeholder=text(self.language, "operator.code"), id="operator-code")
            yield Static("", id="operator-error", classes="error")
            with Horizontal(classes="row"):
                yield Button(text(self.language, "operator.open"), id="operator-open", variant="primary")
                yield Button(text(self.language, "operator.close"), id="operator-cancel")

    @on(Input.Submitted)
    @on(Button.Pressed, "#operator-open")
    def _check(self) -> None:
        entered = self.query_one(Input).value
        outcome = self._code.check(entered)
        if outcome is CodeCheck.ACCEPTED:
            self.dismiss(True)
            return
        self.query_one(Input).value = ""
        if outcome is CodeCheck.LOCKED:
            logger.warning("operator code locked after repeated wrong entries")
        key = "operator.locked" if outcome is CodeCheck.LOCKED else "operator.wrong_code"
        self.query_one("#operator-error", Static).update(text(self.language, key))

    @on(Button.Pressed, "#operator-cancel")
    def _cancel(self) -> None:
        self.dismiss(False)

    def action_close(self) -> None:
        self.dismiss(False)


class OperatorScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close", show=False)]

    def __init__(
        self,
        language: str,
        devices: KioskDevices,
        tray: CardTray,
        cards: list[DemoCardEntry],
        card_present: Callable[[], bool],
    ) -> None:
        super().__init__()
        self.language = language
        self._card_present = card_present
        self.devices = devices
        self.tray = tray
        self.cards = cards

    def t(self, key: str, **values: object) -> str:
        return text(self.language, key, **values)

    def compose(self) -> ComposeResult:
        runner = self.devices.runner
        with VerticalScroll(id="operator", classes="panel"):
            yield Static(self.t("operator.title"), classes="title")
            yield Static(self.t("operator.kiosk", kiosk_id=self.devices.kiosk_id))
            yield Static("", id="reader-state")
            yield Static(self.t("operator.service", state="…"), id="service-state")
            yield Static("", id="paper")
            with Horizontal(classes="row"):
                yield Button(self.t("operator.refill"), id="paper-refill")
                yield Button(self.t("operator.empty"), id="paper-empty", variant="warning")
            yield Static(self.t("operator.outcomes"), classes="subtitle")
            outcomes = list(runner.outcomes)
            if not outcomes:
                yield Static(self.t("operator.no_outcomes"))
            for outcome in outcomes:
                yield Static(
                    self.t(
                        "operator.outcome",
                        at=f"{outcome.at.astimezone(JST):%H:%M:%S}",
                        outcome=outcome_words(self.language, outcome.outcome),
                        transaction=(outcome.transaction_id or "-")[:8],
                        fee=outcome.fee_yen,
                    ),
                    classes="outcome",
                )
            if self.cards:
                yield Static(self.t("operator.tray"), classes="subtitle")
                yield Static("", id="tray-current")
                for index, card in enumerate(self.cards):
                    yield Button(self.t("operator.place", label=card.label), id=f"tray-{index}", classes="tray")
                yield Button(self.t("operator.remove"), id="tray-remove")
                yield Static("", id="tray-error", classes="error")
            yield Button(self.t("operator.close"), id="operator-close", variant="primary")

    def on_mount(self) -> None:
        self._refresh_state()
        self._check_service()
        # The tray's likely next move has the focus: take the card off when one is on,
        # else place the first card; Enter does it without Tab.
        if self.cards:
            target = "#tray-remove" if self.tray.current is not None else "#tray-0"
        else:
            target = "#operator-close"
        self.query_one(target, Button).focus()

    def _refresh_state(self) -> None:
        runner = self.devices.runner
        # The flow's view of the card, not a reader query: the reader's PC/SC context
        # belongs to the thread that watches it.
        present = self._card_present()
        state = self.t("card_status.present" if present else "card_status.absent")
        self.query_one("#reader-state", Static).update(
            self.t("operator.reader", reader=runner.reader.name, state=state)
        )
        self.query_one("#paper", Static).update(self.t("operator.paper", sheets=runner.printer.sheets))
        if self.cards:
            current = self.tray.current
            self.query_one("#tray-current", Static).update(
                self.t("operator.tray_empty")
                if current is None
                else self.t("operator.tray_current", label=current.label)
            )

    @work(thread=True, exclusive=True, group="operator")
    def _check_service(self) -> None:
        up = self.devices.runner.client.health()
        state = self.t("operator.service_up" if up else "operator.service_down")
        self.app.call_from_thread(
            self.query_one("#service-state", Static).update, self.t("operator.service", state=state)
        )

    @on(Button.Pressed, "#paper-refill, #paper-empty")
    def _paper(self, event: Button.Pressed) -> None:
        sheets = self.devices.settings.paper_sheets if event.button.id == "paper-refill" else 0
        self.devices.runner.printer.load_paper(sheets)
        self.app.post_message(PaperLoaded(sheets))
        self._refresh_state()

    @on(Button.Pressed, ".tray")
    def _place(self, event: Button.Pressed) -> None:
        card = self.cards[int((event.button.id or "").removeprefix("tray-"))]
        self._tray_action(card)

    @on(Button.Pressed, "#tray-remove")
    def _remove(self) -> None:
        self._tray_action(None)

    @work(thread=True, exclusive=True, group="tray")
    def _tray_action(self, card: DemoCardEntry | None) -> None:
        try:
            if card is None:
                self.tray.remove()
            else:
                self.tray.place(card)
            message = ""
        except CardFileError:
            message = self.t("operator.tray_error_card_file")
        except OSError as exc:
            logger.warning("the demo card could not be placed: %s", type(exc).__name__)
            message = self.t("operator.tray_error_reader", port=self.devices.settings.vpcd_port)
        except Exception as exc:  # noqa: BLE001 - shown to the operator in one line
            message = self.t("operator.tray_error", error=type(exc).__name__)
        self.app.call_from_thread(self.query_one("#tray-error", Static).update, message)
        self.app.call_from_thread(self._refresh_state)
        # The flow hears of the card through the reader's events, a moment later.
        self.app.call_from_thread(self.set_timer, 1.0, self._refresh_state)

    @on(Button.Pressed, "#operator-close")
    def _close(self) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
