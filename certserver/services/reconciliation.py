"""What the operator reconciles: where every paid yen went, and which released transactions
still wait for their kiosk's word (`released_unconfirmed`).

Every paid transaction ends printed (the fee is the municipality's), refunded (recorded in
`refunded_yen`), or `released_unconfirmed`: documents were downloaded and may be on paper,
and the kiosk has not said so. Those are the ones an operator settles by hand (with the
kiosk's journal or the store's till) if the kiosk's late report never comes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Integer, func, select, type_coerce
from sqlalchemy.orm import InstrumentedAttribute, Session

from certserver.db.models.transactions import IssuedDocument, KioskTransaction


@dataclass(frozen=True)
class StateTotals:
    state: str
    transactions: int
    paid_yen: int
    refunded_yen: int


@dataclass(frozen=True)
class Unconfirmed:
    transaction_id: str
    kiosk_id: str
    ended_at: datetime | None
    end_reason: str | None
    paid_yen: int
    certificate_numbers: tuple[str, ...]


def totals_by_state(session: Session) -> list[StateTotals]:
    """Transactions and money per state, in one read."""
    rows = session.execute(
        select(
            KioskTransaction.state,
            func.count(),
            _yen_total(KioskTransaction.paid_yen),
            _yen_total(KioskTransaction.refunded_yen),
        )
        .group_by(KioskTransaction.state)
        .order_by(KioskTransaction.state)
    )
    return [StateTotals(state, count, int(paid), int(refunded)) for state, count, paid, refunded in rows]


def _yen_total(amounts: InstrumentedAttribute[int | None]) -> ColumnElement[int]:
    # COALESCE makes the sum never NULL; SQLAlchemy types it after its first argument.
    return type_coerce(func.coalesce(func.sum(amounts), 0), Integer)


def unconfirmed(session: Session) -> list[Unconfirmed]:
    """Every `released_unconfirmed` transaction with its issued certificate numbers."""
    txs = session.scalars(
        select(KioskTransaction)
        .where(KioskTransaction.state == "released_unconfirmed")
        .order_by(KioskTransaction.ended_at)
    )
    result = []
    for tx in txs:
        numbers = session.scalars(
            select(IssuedDocument.certificate_number)
            .where(IssuedDocument.transaction_id == tx.id, IssuedDocument.status == "issued")
            .order_by(IssuedDocument.copy_index)
        )
        result.append(Unconfirmed(tx.id, tx.kiosk_id, tx.ended_at, tx.end_reason, tx.paid_yen or 0, tuple(numbers)))
    return result
