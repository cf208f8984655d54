"""What happened at the kiosk: what the person did, what the devices reported, and the
results of the effects the state machine asked for.

Plain frozen dataclasses, no I/O. A `Result` carries the ticket of the effect it answers,
so the machine can ignore an answer that arrives after the visit moved on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from kiosk.models import Document, DocumentRef, Menu, OrderAccepted


@dataclass(frozen=True)
class Event:
    pass


@dataclass(frozen=True)
class Pressed(Event):
    """A button without data: `action` is one of the Action values."""

    action: str


class Action(StrEnum):
    GYOSEI = "gyosei"  # 行政サービス
    CERTIFICATES = "certificates"  # 証明書交付サービス
    ACCEPT = "accept"
    DECLINE = "decline"
    CANCEL = "cancel"
    BACK = "back"
    NEXT = "next"
    CONFIRM = "confirm"
    ACKNOWLEDGE = "acknowledge"
    WHOLE_HOUSEHOLD = "whole_household"
    USE_CARD = "use_card"  # "this card on the reader is mine": read a card left behind


@dataclass(frozen=True)
class LanguageChosen(Event):
    language: str  # "ja" | "en"


@dataclass(frozen=True)
class PinEntered(Event):
    pin: str = field(repr=False)


@dataclass(frozen=True)
class MunicipalityChosen(Event):
    code: str
    role: str


@dataclass(frozen=True)
class CertificateChosen(Event):
    kind: str


@dataclass(frozen=True)
class PersonToggled(Event):
    person_id: str


@dataclass(frozen=True)
class OptionToggled(Event):
    code: str


@dataclass(frozen=True)
class CopiesChosen(Event):
    copies: int


@dataclass(frozen=True)
class CashInserted(Event):
    amount_yen: int


@dataclass(frozen=True)
class CardPlaced(Event):
    pass


@dataclass(frozen=True)
class CardRemoved(Event):
    pass


@dataclass(frozen=True)
class PaperChanged(Event):
    """The printer's paper level (sheets); the operator may simulate running out."""

    sheets: int


@dataclass(frozen=True)
class Tick(Event):
    """Time passes: checks the idle time-out."""


@dataclass(frozen=True)
class Result(Event):
    ticket: int


@dataclass(frozen=True)
class CardRead(Result):
    certificate: bytes = field(repr=False)
    tries_left: int = 3


@dataclass(frozen=True)
class TransactionStarted(Result):
    transaction_id: str
    challenge: bytes = field(repr=False)


@dataclass(frozen=True)
class ChallengeSigned(Result):
    signature: bytes = field(repr=False)


@dataclass(frozen=True)
class PinRejected(Result):
    tries_left: int


@dataclass(frozen=True)
class PinLocked(Result):
    pass


@dataclass(frozen=True)
class CardFailed(Result):
    """The card was removed (`removed`) or could not be read."""

    removed: bool = False


@dataclass(frozen=True)
class Authenticated(Result):
    menu: Menu


@dataclass(frozen=True)
class OrderRefused(Result):
    code: str
    message_ja: str
    message_en: str


@dataclass(frozen=True)
class OrderPrepared(Result):
    accepted: OrderAccepted


@dataclass(frozen=True)
class DocumentsFetched(Result):
    listed: tuple[DocumentRef, ...]  # what the service listed for this transaction
    documents: tuple[Document, ...] = field(repr=False)  # what was downloaded


@dataclass(frozen=True)
class PaymentRecorded(Result):
    pass


@dataclass(frozen=True)
class PrintProgressed(Result):
    done_pages: int
    total_pages: int


@dataclass(frozen=True)
class Printed(Result):
    pass


@dataclass(frozen=True)
class PrintFailed(Result):
    out_of_paper: bool  # False: a document did not belong to this transaction


@dataclass(frozen=True)
class EffectCrashed(Result):
    """Performing the effect raised something unforeseen (logged where it happened)."""


@dataclass(frozen=True)
class ServiceFailed(Result):
    """The service refused or could not be reached; `code` is the API's error code, or
    "unreachable" / "timeout" for transport failures. `refused`: the rules refused (a
    RuleViolation), which is an answer about this person, not a fault of the service."""

    code: str
    message_ja: str = ""
    message_en: str = ""
    refused: bool = False
