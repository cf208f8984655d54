"""What an ended transaction may leave behind, and for how long.

When a transaction ends its PDFs are erased (services.transactions) and here, in the same
database transaction, the stored answers of its idempotent requests are scrubbed: a menu
or an order answer names residents, and a replay after the end needs only to learn that
the transaction ended. On SQLite the commit is then followed by a WAL checkpoint that cuts
the WAL to zero bytes, and `secure_delete` zeroes the freed pages, so neither the erased
PDFs nor the scrubbed answers stay readable in the data folder (db/session.py).

Records of requests that never reached a transaction (a refused start, say) hold no
personal data, and every record is deleted after `IDEMPOTENCY_RETENTION` by the service's
sweep.
"""

from __future__ import annotations

from sqlalchemy.orm import object_session

from certserver.db.models.transactions import KioskTransaction
from certserver.db.session import checkpoint_after_commit


def transaction_ended(tx: KioskTransaction) -> None:
    """Erase what the ended transaction `tx` leaves in its session's database transaction,
    and have the WAL checkpointed after the commit."""
    session = object_session(tx)
    if session is None:  # pragma: no cover - an ended transaction is always a loaded row
        raise ValueError("the transaction is not attached to a session")
    checkpoint_after_commit(session)
