"""What the kiosk's state machine asks its caller to do: card commands, HTTP calls, cash and
printer actions.

`KioskFlow.handle` returns effects; the caller (the Textual app, the headless driver, the
load generator) performs each one and feeds its result back as a `kiosk.events.Result`
carrying the effect's `ticket`. Plain frozen dataclasses, no I/O. Secrets (the PIN, the
certificate, the signature, the documents) are kept out of every repr.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kiosk.models import Document, DocumentRef, Order


@dataclass(frozen=True)
class Effect:
    ticket: int  # echoed by the result event; 0 for effects with no result


@dataclass(frozen=True)
class ReadCard(Effect):
    """Read the user-authentication certificate and the PIN's remaining tries."""


@dataclass(frozen=True)
class StartTransaction(Effect):
    """Open a transaction with the service; it answers with a challenge."""


@dataclass(frozen=True)
class SignChallenge(Effect):
    """Have the card verify the PIN and sign the challenge. The PIN lives only here."""

    challenge: bytes
    pin: str = field(repr=False)


@dataclass(frozen=True)
class Authenticate(Effect):
    transaction_id: str
    certificate: bytes = field(repr=False)
    signature: bytes = field(repr=False)


@dataclass(frozen=True)
class PlaceOrder(Effect):
    transaction_id: str
    order: Order


@dataclass(frozen=True)
class FetchDocuments(Effect):
    """List the paid transaction's documents, then download each by its id."""

    transaction_id: str


@dataclass(frozen=True)
class RecordPayment(Effect):
    transaction_id: str
    fee_yen: int
    paid_yen: int


@dataclass(frozen=True)
class PrintDocuments(Effect):
    transaction_id: str
    expected: tuple[DocumentRef, ...]
    documents: tuple[Document, ...] = field(repr=False)


@dataclass(frozen=True)
class PrintReceipt(Effect):
    """Print the 利用明細 beside the certificates (nothing about the person)."""

    transaction_id: str
    kind: str
    copies: int
    fee_yen: int
    paid_yen: int
    change_yen: int


@dataclass(frozen=True)
class ReportPrinted(Effect):
    transaction_id: str


@dataclass(frozen=True)
class CancelTransaction(Effect):
    transaction_id: str
    reason: str


@dataclass(frozen=True)
class ReturnCash(Effect):
    amount_yen: int


@dataclass(frozen=True)
class CollectCash(Effect):
    """Keep the fee from the escrow and pay out the change."""

    fee_yen: int
    change_yen: int


@dataclass(frozen=True)
class VisitEnded(Effect):
    """The visit is over; `outcome` is "issued", the code of the rule that refused it
    (`under_15`, `seal_cancelled`, `not_available_at_kiosk` ...) or a Failure value.
    Holds no personal data."""

    outcome: str
    transaction_id: str | None
    fee_yen: int
    paid_yen: int
    change_yen: int
