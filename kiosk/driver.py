"""The headless driver: the same flow and the same effect runner as the Textual app, with
a scripted person instead of a touch screen (for `kiosk simulate` and `kiosk load`).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from kiosk import flow as f
from kiosk.card import CardReader, VirtualCardReader
from kiosk.runner import EffectRunner

logger = logging.getLogger(__name__)


class ScriptError(Exception):
    """The scripted visit asked for something the menu does not offer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class VisitScript:
    """What the simulated person does. The PIN is not printed in its repr."""

    pin: str = field(repr=False)
    certificate: str = "juminhyo"
    municipality_role: str = "jushochi"
    persons: str = "self"  # "self", "all" (whole household) or comma-separated person ids
    options: tuple[str, ...] = ()
    copies: int = 1
    pay_yen: int | None = None  # None: insert the exact fee
    language: str = "ja"


@dataclass
class VisitResult:
    status: str  # "issued" | "error"
    error_code: str | None = None
    documents: list[str] = field(default_factory=list)
    fee: int = 0
    paid: int = 0
    change: int = 0
    transaction_id: str | None = None
    tries_left: int | None = None

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "status": self.status,
            "error_code": self.error_code,
            "documents": self.documents,
            "fee": self.fee,
            "paid": self.paid,
            "change": self.change,
            "transaction_id": self.transaction_id,
        }
        if self.tries_left is not None:
            data["tries_left"] = self.tries_left
        return data


def coins_for(amount_yen: int) -> list[int]:
    """`amount_yen` as accepted notes and coins, largest first. Raises ValueError when it is
    not a multiple of 10 yen."""
    if amount_yen < 0 or amount_yen % 10:
        raise ValueError("the amount must be a non-negative multiple of 10 yen")
    coins = []
    for value in sorted(f.DENOMINATIONS, reverse=True):
        count, amount_yen = divmod(amount_yen, value)
        coins += [value] * count
    return coins


class Driver:
    """Feeds a KioskFlow and performs its effects synchronously, in order."""

    def __init__(self, flow: f.KioskFlow, runner: EffectRunner) -> None:
        self.flow = flow
        self.runner = runner
        self.steps_seen: list[f.Step] = []
        self.last_outcome: f.VisitEnded | None = None
        # What the scripted person does when the kiosk asks them to take the card (a test
        # harness takes a virtual card out of its vpcd reader); None: a person takes it.
        self.on_take_card: Callable[[], None] | None = None

    def send(self, event: f.Event) -> None:
        """Apply `event` and everything it causes, until the flow waits for the person."""
        queue: deque[f.Event] = deque([event])
        while queue:
            effects = self.flow.handle(queue.popleft())
            if not self.steps_seen or self.steps_seen[-1] is not self.flow.step:
                self.steps_seen.append(self.flow.step)
            for effect in effects:
                if isinstance(effect, f.VisitEnded):
                    self.last_outcome = effect
                self.runner.run(effect, queue.append)

    @property
    def reader(self) -> CardReader:
        return self.runner.reader

    def _sync_card(self) -> None:
        present = self.reader.card_present()
        if present != self.flow.card_present:
            self.send(f.CardPlaced() if present else f.CardRemoved())

    def visit(self, script: VisitScript, *, removal_timeout: float = 30.0) -> VisitResult:
        """Run one whole visit; returns how it ended. Never raises for a refusal: the
        result says what happened. The same as `begin`, `authenticate`, `order`, `pay`
        called in turn (tests that act between the steps call them themselves)."""
        self.begin(script.language)
        ended = self.authenticate(script, removal_timeout=removal_timeout)
        if ended is not None:
            return ended
        try:
            self.order(script)
        except ScriptError as exc:
            self.send(f.Pressed(f.Action.CANCEL))
            return self._end(exc.code)
        return self.pay(script)

    def begin(self, language: str = "ja") -> None:
        """A new visit: from the start screen to the PIN (or wherever the card leaves the
        flow: no card, a card the kiosk could not read)."""
        self.runner.printed_files = []
        self.last_outcome = None
        flow = self.flow
        self._sync_card()
        self.send(f.Pressed(f.Action.GYOSEI))
        self.send(f.Pressed(f.Action.CERTIFICATES))
        self.send(f.LanguageChosen(language))
        self.send(f.Pressed(f.Action.ACCEPT))
        if flow.step is f.Step.PLACE_CARD and flow.card_left_behind:
            self.send(f.Pressed(f.Action.USE_CARD))  # the scripted person's own card

    def authenticate(self, script: VisitScript, *, removal_timeout: float = 30.0) -> VisitResult | None:
        """Enter the PIN and take the card off when asked; None when the visit goes on to
        the municipality's menu, else how it ended."""
        flow = self.flow
        if flow.step is f.Step.PLACE_CARD:
            return self._end("no_card")
        if flow.step is f.Step.PIN:
            self.send(f.PinEntered(script.pin))
            if flow.step is f.Step.PIN:
                tries = flow.tries_left
                self.send(f.Pressed(f.Action.CANCEL))
                result = self._end("wrong_pin")
                result.tries_left = tries
                return result
        if flow.step is f.Step.REMOVE_CARD:
            self._remove_card(removal_timeout)
        if flow.step not in (f.Step.MUNICIPALITY, f.Step.CONFIRM):
            return self._end(None)
        return None

    def order(self, script: VisitScript) -> None:
        """Choose the municipality, certificate, persons and copies, and confirm. Raises
        ScriptError when the menu does not offer what the script asks for."""
        flow = self.flow
        if flow.step is f.Step.MUNICIPALITY:
            self._choose(script)
        if flow.step is f.Step.CONFIRM:
            self.send(f.Pressed(f.Action.CONFIRM))

    def pay(self, script: VisitScript) -> VisitResult:
        """Insert the script's cash (the exact fee when it says none), take the
        certificates; returns how the visit ended."""
        flow = self.flow
        if flow.step is f.Step.PAYMENT:
            fee = flow.fee_yen
            amount = fee if script.pay_yen is None else script.pay_yen
            for coin in coins_for(amount):
                if flow.step is not f.Step.PAYMENT:
                    break
                self.runner.acceptor.insert(coin)
                self.send(f.CashInserted(coin))
            if flow.step is f.Step.PAYMENT:  # not enough money: give it back
                self.send(f.Pressed(f.Action.CANCEL))
        return self._end(None)

    def finish(self, script_error: str | None = None) -> VisitResult:
        """End the visit where it stands (cancelling it if it is not over); returns how it
        ended, `script_error` being the code of a visit the script gave up."""
        return self._end(script_error)

    def _remove_card(self, timeout: float) -> None:
        if self.on_take_card is not None:
            self.on_take_card()
        reader = self.reader
        if isinstance(reader, VirtualCardReader):
            reader.take()
            self.send(f.CardRemoved())
            return
        logger.warning("waiting for the card to be removed from %s", reader.name)
        if not reader.card_present():
            # Already gone before we asked: the reader's monitor reports no change for that.
            self.send(f.CardRemoved())
            return
        while self.flow.step is f.Step.REMOVE_CARD:
            change = reader.wait_change(timeout)
            if change is None:
                self.send(f.Tick())
                break
            self.send(f.CardPlaced() if change else f.CardRemoved())

    def _choose(self, script: VisitScript) -> None:
        flow = self.flow
        assert flow.menu is not None
        municipality = next((m for m in flow.menu.municipalities if m.role == script.municipality_role), None)
        if municipality is None:
            raise ScriptError("no_municipality", f"no {script.municipality_role} municipality on the menu")
        self.send(f.MunicipalityChosen(municipality.code, municipality.role.value))
        if flow.step is not f.Step.CERTIFICATE:
            return
        offer = next((o for o in municipality.offers if o.kind == script.certificate), None)
        if offer is None or not offer.available:
            reason = offer.unavailable_reason if offer is not None else None
            raise ScriptError(reason or "not_offered", f"{script.certificate} is not on offer now")
        self.send(f.CertificateChosen(offer.kind))
        if flow.step is f.Step.PERSONS:
            self._persons(script)
        if flow.step is not f.Step.COPIES:
            raise ScriptError("bad_persons", "the persons chosen cannot be ordered")
        if not 1 <= script.copies <= offer.max_copies:
            raise ScriptError("bad_copies", f"copies must be 1-{offer.max_copies}")
        self.send(f.CopiesChosen(script.copies))
        self.send(f.Pressed(f.Action.NEXT))

    def _persons(self, script: VisitScript) -> None:
        flow = self.flow
        offer = flow.selection.offer
        assert offer is not None
        if script.persons == "all":
            if not offer.whole_household_allowed:
                raise ScriptError("bad_persons", "the whole household cannot be chosen here")
            self.send(f.Pressed(f.Action.WHOLE_HOUSEHOLD))
        elif script.persons != "self":
            wanted = [p for p in script.persons.split(",") if p]
            known = {p.person_id for p in offer.persons}
            if not set(wanted) <= known:
                raise ScriptError("bad_persons", "a person id is not on the menu")
            for person_id in list(flow.selection.person_ids):
                if person_id not in wanted:
                    self.send(f.PersonToggled(person_id))
            for person_id in wanted:
                if person_id not in flow.selection.person_ids:
                    self.send(f.PersonToggled(person_id))
        known_options = {o.code for o in offer.options}
        for code in script.options:
            if code not in known_options:
                raise ScriptError("bad_option", f"option {code} is not offered for {offer.kind}")
            self.send(f.OptionToggled(code))
        self.send(f.Pressed(f.Action.NEXT))

    def _end(self, script_error: str | None) -> VisitResult:
        flow = self.flow
        outcome = self.last_outcome
        if flow.step is f.Step.TAKE_ITEMS and outcome is not None and outcome.outcome == "issued":
            result = VisitResult(
                "issued",
                None,
                [str(p) for p in self.runner.printed_files],
                outcome.fee_yen,
                outcome.paid_yen,
                outcome.change_yen,
                outcome.transaction_id,
            )
            self.send(f.Pressed(f.Action.ACKNOWLEDGE))
            return result
        if flow.failure is not None:
            code = flow.refusal_code or flow.failure.value  # a refusal reports its rule
        else:
            code = script_error or "incomplete"
        if script_error is not None and flow.failure in (f.Failure.CANCELLED, f.Failure.PAYMENT_CANCELLED):
            code = script_error
        result = VisitResult(
            "error",
            code,
            [],
            outcome.fee_yen if outcome else 0,
            outcome.paid_yen if outcome else 0,
            0,
            outcome.transaction_id if outcome else None,
        )
        if flow.step is f.Step.FAILED:
            self.send(f.Pressed(f.Action.ACKNOWLEDGE))
        elif flow.step is not f.Step.START:
            self.send(f.Pressed(f.Action.CANCEL))
            self.send(f.Pressed(f.Action.ACKNOWLEDGE))
        return result
