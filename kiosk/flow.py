"""The kiosk's state machine: every step of a visit, every way it can fail.

Plain Python with no I/O and no Textual: `KioskFlow.handle(event)` changes the step and
returns the *effects* (card commands, HTTP calls, cash and printer actions, `kiosk.effects`)
that the caller must perform; their results come back as events (`kiosk.events`). Both are
re-exported here, so callers write `flow.Pressed`, `flow.ReadCard`. The Textual app, the
headless driver and the load generator all run this one machine, so they cannot disagree
about the rules.

Security choices that live here:
- The PIN travels only inside one `SignChallenge` effect (whose repr hides it); the flow
  never stores it, so nothing that outlives that one card call can hold it.
- Every result event carries the ticket of the effect it answers; a result that arrives
  after the visit moved on (a cancel, a time-out) is ignored, so a late answer can never
  act on the next person's visit.
- Every way out (done, cancelled, failed, timed out) goes through `_reset`, which drops the
  card's certificate, the menu, the documents and the transaction id.
- A card still on the reader when a visit ends is `card_left_behind`: the screens ask for it
  to be taken until it is, and the next visit does not read it unless it is placed again
  (taken off and put back) or its holder confirms it is theirs (`Action.USE_CARD`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from kiosk.effects import (
    Authenticate,
    CancelTransaction,
    CollectCash,
    Effect,
    FetchDocuments,
    PlaceOrder,
    PrintDocuments,
    PrintReceipt,
    ReadCard,
    RecordPayment,
    ReportPrinted,
    ReturnCash,
    SignChallenge,
    StartTransaction,
    VisitEnded,
)
from kiosk.events import (
    Action,
    Authenticated,
    CardFailed,
    CardPlaced,
    CardRead,
    CardRemoved,
    CashInserted,
    CertificateChosen,
    ChallengeSigned,
    CopiesChosen,
    DocumentsFetched,
    EffectCrashed,
    Event,
    LanguageChosen,
    MunicipalityChosen,
    OptionToggled,
    OrderPrepared,
    OrderRefused,
    PaperChanged,
    PaymentRecorded,
    PersonToggled,
    PinEntered,
    PinLocked,
    PinRejected,
    Pressed,
    Printed,
    PrintFailed,
    PrintProgressed,
    Result,
    ServiceFailed,
    Tick,
    TransactionStarted,
)
from kiosk.models import Menu, Municipality, Offer, Order, OrderAccepted

DENOMINATIONS = (10, 50, 100, 500, 1000)  # yen the simulated acceptor takes
PIN_LENGTH = 4


class Step(StrEnum):
    START = "start"  # multi-copy machine main menu (行政サービス)
    SERVICE_MENU = "service_menu"  # 行政サービス -> 証明書交付サービス
    LANGUAGE = "language"
    TERMS = "terms"
    PLACE_CARD = "place_card"
    READING_CARD = "reading_card"
    PIN = "pin"
    AUTHENTICATING = "authenticating"
    REMOVE_CARD = "remove_card"
    MUNICIPALITY = "municipality"  # 住所地 / 本籍地
    CERTIFICATE = "certificate"
    PERSONS = "persons"  # whose certificate, and optional items
    COPIES = "copies"
    CONFIRM = "confirm"
    ORDERING = "ordering"  # the service prepares (renders) the documents
    PAYMENT = "payment"
    SETTLING = "settling"  # the payment is recorded; the documents are downloaded
    PRINTING = "printing"
    TAKE_ITEMS = "take_items"  # certificates, change, 利用明細 (receipt)
    FAILED = "failed"  # see KioskFlow.failure


class Failure(StrEnum):
    """Why a visit ended early. Each has its own screen text (i18n key `failure.<value>`)."""

    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    CARD_REMOVED = "card_removed"
    CARD_UNREADABLE = "card_unreadable"
    PIN_LOCKED = "pin_locked"
    CERTIFICATE_EXPIRED = "certificate_expired"
    CERTIFICATE_REVOKED = "certificate_revoked"
    CERTIFICATE_REJECTED = "certificate_rejected"
    SERVICE_UNREACHABLE = "service_unreachable"
    SERVICE_SLOW = "service_slow"
    SERVICE_ERROR = "service_error"
    MUNICIPALITY_CLOSED = "municipality_closed"
    # The rules refuse (a refusal, not a fault: never "try again later"); the rule's code is
    # in KioskFlow.refusal_code and picks the screen's text (i18n `refusal.<code>`).
    HOLDER_REFUSED = "holder_refused"  # the card holder may not use the service at all
    DOCUMENT_REFUSED = "document_refused"  # this order is refused
    PAYMENT_CANCELLED = "payment_cancelled"
    PRINTER_OUT_OF_PAPER = "printer_out_of_paper"
    DOCUMENT_MISMATCH = "document_mismatch"
    KIOSK_FAULT = "kiosk_fault"  # a fault in the kiosk itself (a bug): end safely


# Error codes of the service's API that have a failure of their own; any other code is a
# refusal by the rules (HTTP 422: HOLDER_REFUSED or DOCUMENT_REFUSED) or a SERVICE_ERROR
# (with the service's own message shown).
SERVICE_CODES: dict[str, Failure] = {
    "certificate_expired": Failure.CERTIFICATE_EXPIRED,
    "certificate_not_yet_valid": Failure.CERTIFICATE_REJECTED,
    "certificate_revoked": Failure.CERTIFICATE_REVOKED,
    "certificate_not_registered": Failure.CERTIFICATE_REJECTED,
    "certificate_unknown_ca": Failure.CERTIFICATE_REJECTED,
    "certificate_malformed": Failure.CERTIFICATE_REJECTED,
    "certificate_error": Failure.CERTIFICATE_REJECTED,
    "signature_invalid": Failure.CERTIFICATE_REJECTED,
    "municipality_stopped": Failure.MUNICIPALITY_CLOSED,
    "municipality_not_participating": Failure.MUNICIPALITY_CLOSED,
    "municipality_not_available": Failure.MUNICIPALITY_CLOSED,
    "outside_hours": Failure.MUNICIPALITY_CLOSED,
    "year_end_closure": Failure.MUNICIPALITY_CLOSED,
    "maintenance_day": Failure.MUNICIPALITY_CLOSED,
    "transaction_expired": Failure.TIMED_OUT,
    "challenge_expired": Failure.TIMED_OUT,
    "unreachable": Failure.SERVICE_UNREACHABLE,
    "timeout": Failure.SERVICE_SLOW,
    # The centre's link to the person's municipality did not answer: it ended the transaction.
    "municipality_unavailable": Failure.SERVICE_SLOW,
}

# Steps where the kiosk waits for the person (an idle time-out applies) and how long.
IDLE_STEPS = frozenset(
    {
        Step.SERVICE_MENU,
        Step.LANGUAGE,
        Step.TERMS,
        Step.PLACE_CARD,
        Step.PIN,
        Step.REMOVE_CARD,
        Step.MUNICIPALITY,
        Step.CERTIFICATE,
        Step.PERSONS,
        Step.COPIES,
        Step.CONFIRM,
        Step.PAYMENT,
        Step.FAILED,
    }
)  # TAKE_ITEMS has none: the reminder stays until the person acknowledges it
# Steps where the card must stay on the reader: taking it away there ends the visit.
CARD_STEPS = frozenset({Step.READING_CARD, Step.PIN, Step.AUTHENTICATING})


# The machine, and the events and effects it speaks (callers write flow.Pressed, flow.ReadCard).
__all__ = [
    "CARD_STEPS",
    "DENOMINATIONS",
    "IDLE_STEPS",
    "PIN_LENGTH",
    "SERVICE_CODES",
    "Action",
    "Authenticate",
    "Authenticated",
    "CancelTransaction",
    "CardFailed",
    "CardPlaced",
    "CardRead",
    "CardRemoved",
    "CashInserted",
    "CertificateChosen",
    "ChallengeSigned",
    "CollectCash",
    "CopiesChosen",
    "DocumentsFetched",
    "Effect",
    "EffectCrashed",
    "Event",
    "Failure",
    "FetchDocuments",
    "KioskFlow",
    "LanguageChosen",
    "MunicipalityChosen",
    "OptionToggled",
    "OrderPrepared",
    "OrderRefused",
    "PaperChanged",
    "PaymentRecorded",
    "PersonToggled",
    "PinEntered",
    "PinLocked",
    "PinRejected",
    "PlaceOrder",
    "Pressed",
    "PrintDocuments",
    "PrintFailed",
    "PrintProgressed",
    "PrintReceipt",
    "Printed",
    "ReadCard",
    "Receipt",
    "RecordPayment",
    "ReportPrinted",
    "Result",
    "ReturnCash",
    "Selection",
    "ServiceFailed",
    "SignChallenge",
    "StartTransaction",
    "Step",
    "Tick",
    "Timeouts",
    "TransactionStarted",
    "VisitEnded",
]

# -- the machine ----------------------------------------------------------------------------


@dataclass
class Selection:
    """What the person chose so far (reset with the visit)."""

    municipality: Municipality | None = None
    offer: Offer | None = None
    person_ids: list[str] = field(default_factory=list)
    whole_household: bool = False
    options: set[str] = field(default_factory=set)
    copies: int = 1


@dataclass(frozen=True)
class Receipt:
    """利用明細: what the reminder screen shows after printing; nothing about persons."""

    kind: str
    copies: int
    fee_yen: int
    paid_yen: int
    change_yen: int


@dataclass(frozen=True)
class Timeouts:
    """Idle seconds per step before the visit is cancelled (FAILED: back to the start)."""

    default: float = 60.0
    pin: float = 60.0
    payment: float = 90.0
    failed: float = 20.0

    def for_step(self, step: Step) -> float:
        return {Step.PIN: self.pin, Step.PAYMENT: self.payment, Step.FAILED: self.failed}.get(step, self.default)


class KioskFlow:
    """One kiosk's visit state. Not thread-safe: feed it from one thread."""

    def __init__(self, *, timeouts: Timeouts | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeouts = timeouts or Timeouts()
        self._clock = clock
        self._next_ticket = 1
        self.card_present = False
        # The card on the reader stayed there from a visit that has ended: it may be the
        # previous person's, so it is neither read nor forgotten about (see _reset).
        self.card_left_behind = False
        self.paper_sheets: int | None = None  # unknown until the printer reports
        self._reset()

    # -- public state ------------------------------------------------------------------
    def _reset(self) -> None:
        # Every end of a visit comes here (done, failed, cancelled, timed out): a card
        # still on the reader now belongs to a visit that is over.
        self.card_left_behind = self.card_left_behind or self.card_present
        self.step = Step.START
        self.language = "ja"
        self.failure: Failure | None = None
        self.failure_message: tuple[str, str] | None = None  # the service's (ja, en)
        self.refusal_code: str | None = None  # the rule that refused (FAILED after a refusal)
        self.tries_left: int | None = None
        self.pin_error = False  # the last PIN was wrong
        self.transaction_id: str | None = None
        self._challenge: bytes | None = None
        self._certificate: bytes | None = None
        self._signature: bytes | None = None
        self.menu: Menu | None = None
        self.selection = Selection()
        self.order_accepted: OrderAccepted | None = None
        self.paid_yen = 0
        self.change_yen = 0
        self.printed_pages = 0
        self.total_pages = 0
        self.refunded_yen = 0
        self.receipt: Receipt | None = None
        self._awaiting: int | None = None
        self._deadline: float | None = None

    @property
    def fee_yen(self) -> int:
        if self.order_accepted is not None:
            return self.order_accepted.fee_yen
        offer = self.selection.offer
        return 0 if offer is None else offer.fee_yen * self.selection.copies

    @property
    def holds_personal_data(self) -> bool:
        """True while anything about the person is in memory (tests check the reset)."""
        return any(
            (
                self.transaction_id,
                self._certificate,
                self._signature,
                self._challenge,
                self.menu,
                self.selection.offer,
                self.selection.person_ids,
            )
        )

    def seconds_left(self) -> float | None:
        """Seconds until the idle time-out on this step (None where none applies)."""
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - self._clock())

    # -- event dispatch ----------------------------------------------------------------
    def handle(self, event: Event) -> list[Effect]:
        """Apply one event; return the effects to perform, in order. Never raises for an
        event that does not fit the step: it is ignored (a stray tap, a late result)."""
        match event:
            case Tick():
                return self._on_tick()
            case CardPlaced():
                return self._card_placed()
            case CardRemoved():
                return self._card_removed()
            case PaperChanged(sheets=sheets):
                self.paper_sheets = sheets
                return []
            case Result():
                if event.ticket != self._awaiting:
                    return []  # a late answer to a visit or a step that has moved on
                self._awaiting = None
                return self._on_result(event)
        self._touch()
        if isinstance(event, Pressed) and event.action == Action.CANCEL:
            return self._cancel()
        handler = getattr(self, f"_on_{self.step.value}", None)
        return handler(event) if handler is not None else []

    # -- helpers -----------------------------------------------------------------------
    def _ticket(self) -> int:
        ticket = self._next_ticket
        self._next_ticket += 1
        self._awaiting = ticket
        return ticket

    def _enter(self, step: Step) -> None:
        self.step = step
        self._touch()

    def _touch(self) -> None:
        if self.step in IDLE_STEPS:
            self._deadline = self._clock() + self.timeouts.for_step(self.step)
        else:
            self._deadline = None

    def _card_placed(self) -> list[Effect]:
        self.card_present = True
        self.card_left_behind = False  # placed now: whoever placed it is at the kiosk
        if self.step is Step.PLACE_CARD:
            return self._read_card()
        return []

    def _card_removed(self) -> list[Effect]:
        self.card_present = False
        self.card_left_behind = False
        if self.step in CARD_STEPS:
            return self._fail(Failure.CARD_REMOVED)
        if self.step is Step.REMOVE_CARD:
            return self._goto_municipality()
        return []

    def _on_tick(self) -> list[Effect]:
        if self._deadline is None or self._clock() < self._deadline:
            return []
        if self.step is Step.FAILED:
            return self._finish_visit()
        if self.step is Step.START:
            return []
        return self._fail(Failure.TIMED_OUT)

    def _cancel(self) -> list[Effect]:
        if self.step is Step.START:
            return []
        if self.step in (Step.FAILED, Step.TAKE_ITEMS):
            return self._finish_visit()
        if self.step in (Step.SETTLING, Step.PRINTING):
            return []  # money taken and paper moving: too late to cancel
        if self.step in (Step.SERVICE_MENU, Step.LANGUAGE, Step.TERMS):
            self._reset()
            return []
        failure = Failure.PAYMENT_CANCELLED if self.step is Step.PAYMENT else Failure.CANCELLED
        return self._fail(failure)

    def _fail(
        self, failure: Failure, message: tuple[str, str] | None = None, refusal_code: str | None = None
    ) -> list[Effect]:
        """End the visit early: return the money, cancel the transaction, drop the data."""
        effects: list[Effect] = []
        if self.paid_yen:
            self.refunded_yen = self.paid_yen
            effects.append(ReturnCash(0, self.paid_yen))
        if self.transaction_id is not None:
            effects.append(CancelTransaction(0, self.transaction_id, failure.value))
        outcome = VisitEnded(0, refusal_code or failure.value, self.transaction_id, self.fee_yen, self.paid_yen, 0)
        language, card_present, refunded = self.language, self.card_present, self.refunded_yen
        tries_left = self.tries_left
        self._reset()
        self.language, self.card_present, self.refunded_yen = language, card_present, refunded
        self.tries_left = tries_left if failure is Failure.PIN_LOCKED else None
        self.failure = failure
        self.failure_message = message
        self.refusal_code = refusal_code
        self._enter(Step.FAILED)
        effects.append(outcome)
        return effects

    def _finish_visit(self) -> list[Effect]:
        card_present = self.card_present
        self._reset()
        self.card_present = card_present
        return []

    # -- steps -------------------------------------------------------------------------
    def _on_start(self, event: Event) -> list[Effect]:
        if event == Pressed(Action.GYOSEI):
            self._enter(Step.SERVICE_MENU)
        return []

    @property
    def out_of_paper(self) -> bool:
        """The printer has reported an empty tray: no visit may start (the person would
        enter a PIN and choose, only to hear at the end that nothing can be printed)."""
        return self.paper_sheets == 0

    def _on_service_menu(self, event: Event) -> list[Effect]:
        if event == Pressed(Action.CERTIFICATES) and not self.out_of_paper:
            self._enter(Step.LANGUAGE)
        elif event == Pressed(Action.BACK):
            self._reset()
        return []

    def _on_language(self, event: Event) -> list[Effect]:
        if isinstance(event, LanguageChosen) and event.language in ("ja", "en"):
            self.language = event.language
            self._enter(Step.TERMS)
        return []

    def _on_terms(self, event: Event) -> list[Effect]:
        if event == Pressed(Action.ACCEPT):
            self._enter(Step.PLACE_CARD)
            if self.card_present and not self.card_left_behind:  # placed before the screen asked
                return self._read_card()
        elif event in (Pressed(Action.DECLINE), Pressed(Action.BACK)):
            self._reset()
        return []

    def _on_place_card(self, event: Event) -> list[Effect]:
        if event == Pressed(Action.USE_CARD) and self.card_present:
            self.card_left_behind = False  # the person says the card on the reader is theirs
            return self._read_card()
        return []

    def _read_card(self) -> list[Effect]:
        self._enter(Step.READING_CARD)
        return [ReadCard(self._ticket())]

    def _on_pin(self, event: Event) -> list[Effect]:
        if not isinstance(event, PinEntered):
            return []
        pin = event.pin
        if len(pin) != PIN_LENGTH or not pin.isascii() or not pin.isdigit():
            return []  # the keypad only submits 4 digits; anything else is not sent
        assert self._challenge is not None
        self._enter(Step.AUTHENTICATING)
        return [SignChallenge(self._ticket(), self._challenge, pin)]

    def _goto_municipality(self) -> list[Effect]:
        assert self.menu is not None
        if not any(m.open for m in self.menu.municipalities):
            reasons = {m.closed_reason for m in self.menu.municipalities}
            return self._fail(Failure.MUNICIPALITY_CLOSED, refusal_code=reasons.pop() if len(reasons) == 1 else None)
        self._enter(Step.MUNICIPALITY)
        return []

    def _on_municipality(self, event: Event) -> list[Effect]:
        if not isinstance(event, MunicipalityChosen) or self.menu is None:
            return []
        for municipality in self.menu.municipalities:
            if municipality.code == event.code and municipality.role == event.role:
                if not municipality.open:  # the screen disables it; a script may still ask
                    return self._fail(Failure.MUNICIPALITY_CLOSED, refusal_code=municipality.closed_reason)
                self.selection = Selection(municipality=municipality)
                self._enter(Step.CERTIFICATE)
        return []

    def _on_certificate(self, event: Event) -> list[Effect]:
        if event == Pressed(Action.BACK):
            self.selection = Selection()
            self._enter(Step.MUNICIPALITY)
            return []
        municipality = self.selection.municipality
        if not isinstance(event, CertificateChosen) or municipality is None:
            return []
        offer = next((o for o in municipality.offers if o.kind == event.kind and o.available), None)
        if offer is None:
            return []
        self.selection = Selection(municipality=municipality, offer=offer)
        requester = [p.person_id for p in offer.persons if p.is_requester]
        self.selection.person_ids = requester
        self._enter(Step.PERSONS if (offer.persons or offer.options) else Step.COPIES)
        return []

    def _on_persons(self, event: Event) -> list[Effect]:
        selection = self.selection
        offer = selection.offer
        assert offer is not None
        if event == Pressed(Action.BACK):
            self._enter(Step.CERTIFICATE)
        elif event == Pressed(Action.WHOLE_HOUSEHOLD) and offer.whole_household_allowed:
            selection.whole_household = not selection.whole_household
            # The box stands for its members: ticking it ticks everyone, unticking it leaves
            # the requester, so a person then unticked is taken out of everyone, not chosen alone.
            everyone = [p.person_id for p in offer.persons]
            selection.person_ids = (
                everyone if selection.whole_household else [p.person_id for p in offer.persons if p.is_requester]
            )
        elif isinstance(event, PersonToggled):
            if any(p.person_id == event.person_id for p in offer.persons):
                if event.person_id in selection.person_ids:
                    selection.person_ids.remove(event.person_id)
                else:
                    selection.person_ids.append(event.person_id)
                selection.whole_household = False
        elif isinstance(event, OptionToggled):
            if any(o.code == event.code for o in offer.options):
                selection.options ^= {event.code}
        elif event == Pressed(Action.NEXT) and (selection.whole_household or selection.person_ids or not offer.persons):
            self._enter(Step.COPIES)
        return []

    def _on_copies(self, event: Event) -> list[Effect]:
        offer = self.selection.offer
        assert offer is not None
        if event == Pressed(Action.BACK):
            self._enter(Step.PERSONS if (offer.persons or offer.options) else Step.CERTIFICATE)
        elif isinstance(event, CopiesChosen) and 1 <= event.copies <= offer.max_copies:
            self.selection.copies = event.copies
        elif event == Pressed(Action.NEXT):
            self._enter(Step.CONFIRM)
        return []

    def build_order(self) -> Order:
        """The order the current selection stands for."""
        selection = self.selection
        assert selection.municipality is not None and selection.offer is not None
        return Order(
            municipality_code=selection.municipality.code,
            role=selection.municipality.role,
            kind=selection.offer.kind,
            person_ids=() if selection.whole_household else tuple(selection.person_ids),
            whole_household=selection.whole_household,
            options=frozenset(selection.options),
            copies=selection.copies,
        )

    def _on_confirm(self, event: Event) -> list[Effect]:
        if event == Pressed(Action.BACK):
            self._enter(Step.COPIES)
            return []
        if event != Pressed(Action.CONFIRM):
            return []
        if self.paper_sheets is not None and self.paper_sheets < self.selection.copies:
            return self._fail(Failure.PRINTER_OUT_OF_PAPER)
        assert self.transaction_id is not None
        self._enter(Step.ORDERING)
        return [PlaceOrder(self._ticket(), self.transaction_id, self.build_order())]

    def _on_payment(self, event: Event) -> list[Effect]:
        if not isinstance(event, CashInserted) or event.amount_yen not in DENOMINATIONS:
            return []
        self.paid_yen += event.amount_yen
        if self.paid_yen < self.fee_yen:
            return []
        assert self.transaction_id is not None
        self._enter(Step.SETTLING)
        return [RecordPayment(self._ticket(), self.transaction_id, self.fee_yen, self.paid_yen)]

    def _on_take_items(self, event: Event) -> list[Effect]:
        if event == Pressed(Action.ACKNOWLEDGE):
            return self._finish_visit()
        return []

    def _on_failed(self, event: Event) -> list[Effect]:
        if event == Pressed(Action.ACKNOWLEDGE):
            return self._finish_visit()
        return []

    # -- results -----------------------------------------------------------------------
    def _on_result(self, event: Result) -> list[Effect]:
        match event:
            case ServiceFailed():
                return self._service_failed(event)
            case EffectCrashed():
                return self._fail(Failure.KIOSK_FAULT)
            case CardFailed(removed=removed):
                return self._fail(Failure.CARD_REMOVED if removed else Failure.CARD_UNREADABLE)
            case PinLocked():
                return self._pin_locked()
            case CardRead():
                return self._card_read(event)
            case TransactionStarted():
                return self._transaction_started(event)
            case PinRejected(tries_left=tries_left):
                return self._pin_rejected(tries_left)
            case ChallengeSigned(signature=signature):
                return self._challenge_signed(signature)
            case Authenticated(menu=menu):
                return self._authenticated(menu)
            case OrderRefused(code=code, message_ja=ja, message_en=en):
                return self._refused(code, (ja, en), Failure.DOCUMENT_REFUSED)
            case OrderPrepared(accepted=accepted):
                return self._order_prepared(accepted)
            case PaymentRecorded():
                assert self.transaction_id is not None
                return [FetchDocuments(self._ticket(), self.transaction_id)]
            case DocumentsFetched():
                return self._documents_fetched(event)
            case PrintProgressed(done_pages=done, total_pages=total):
                self.printed_pages, self.total_pages = done, total
                self._awaiting = event.ticket  # more progress, then Printed, answer this ticket
                return []
            case PrintFailed(out_of_paper=out_of_paper):
                return self._fail(Failure.PRINTER_OUT_OF_PAPER if out_of_paper else Failure.DOCUMENT_MISMATCH)
            case Printed():
                return self._printed()
        return []

    def _pin_locked(self) -> list[Effect]:
        self.tries_left = 0
        return self._fail(Failure.PIN_LOCKED)

    def _card_read(self, event: CardRead) -> list[Effect]:
        if event.tries_left <= 0:
            return self._pin_locked()
        self._certificate = event.certificate
        self.tries_left = event.tries_left
        return [StartTransaction(self._ticket())]

    def _transaction_started(self, event: TransactionStarted) -> list[Effect]:
        self.transaction_id = event.transaction_id
        self._challenge = event.challenge
        self.pin_error = False
        self._enter(Step.PIN)
        return []

    def _pin_rejected(self, tries_left: int) -> list[Effect]:
        self.tries_left = tries_left
        self.pin_error = True
        self._enter(Step.PIN)
        return []

    def _challenge_signed(self, signature: bytes) -> list[Effect]:
        assert self.transaction_id is not None and self._certificate is not None
        self._signature = signature
        self.pin_error = False
        return [Authenticate(self._ticket(), self.transaction_id, self._certificate, signature)]

    def _authenticated(self, menu: Menu) -> list[Effect]:
        self.menu = menu
        # The certificate and signature served their purpose: drop them now.
        self._certificate = self._signature = self._challenge = None
        self._enter(Step.REMOVE_CARD)
        if not self.card_present:
            return self._goto_municipality()
        return []

    def _order_prepared(self, accepted: OrderAccepted) -> list[Effect]:
        if accepted.copies != self.selection.copies:
            return self._fail(Failure.DOCUMENT_MISMATCH)
        self.order_accepted = accepted
        self._enter(Step.PAYMENT)
        return []

    def _documents_fetched(self, event: DocumentsFetched) -> list[Effect]:
        assert self.transaction_id is not None
        if len(event.listed) != self.selection.copies:
            return self._fail(Failure.DOCUMENT_MISMATCH)
        self.total_pages = sum(d.ref.pages for d in event.documents)
        self._enter(Step.PRINTING)
        return [PrintDocuments(self._ticket(), self.transaction_id, event.listed, event.documents)]

    def _service_failed(self, event: ServiceFailed) -> list[Effect]:
        message = (event.message_ja, event.message_en) if event.message_en else None
        if event.refused:
            return self._refused(event.code, message, Failure.HOLDER_REFUSED)
        return self._fail(SERVICE_CODES.get(event.code, Failure.SERVICE_ERROR), message)

    def _refused(self, code: str, message: tuple[str, str] | None, otherwise: Failure) -> list[Effect]:
        """The rules said no: end the visit as a refusal that reports the rule's code."""
        return self._fail(SERVICE_CODES.get(code, otherwise), message, refusal_code=code)

    def _printed(self) -> list[Effect]:
        assert self.transaction_id is not None and self.order_accepted is not None
        self.change_yen = self.paid_yen - self.fee_yen
        effects: list[Effect] = [ReportPrinted(0, self.transaction_id)]
        effects.append(CollectCash(0, self.fee_yen, self.change_yen))
        effects.append(VisitEnded(0, "issued", self.transaction_id, self.fee_yen, self.paid_yen, self.change_yen))
        assert self.selection.offer is not None
        effects.append(
            PrintReceipt(
                0,
                self.transaction_id,
                self.selection.offer.kind,
                self.selection.copies,
                self.fee_yen,
                self.paid_yen,
                self.change_yen,
            )
        )
        receipt = Receipt(
            self.selection.offer.kind, self.selection.copies, self.fee_yen, self.paid_yen, self.change_yen
        )
        # Printed: the kiosk keeps nothing of the person, only what the receipt shows.
        card_present, language = self.card_present, self.language
        self._reset()
        self.card_present, self.language, self.receipt = card_present, language, receipt
        self._enter(Step.TAKE_ITEMS)
        return effects
