"""What an ended transaction may leave behind, and for how long.

When a transaction ends its PDFs are erased (centre.transactions) and here, in the same
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

import json
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, update
from sqlalchemy.orm import Session, object_session, sessionmaker

from certserver.db.models.transactions import IdempotencyRecord, KioskTransaction
from certserver.db.session import checkpoint_after_commit, rows_matched
from certserver.refusals import messages

# Long past any retry of a kiosk (a transaction lives 10 minutes by default), short enough
# that the table does not grow without end.
IDEMPOTENCY_RETENTION = timedelta(hours=24)
# What a replay of a request of an ended transaction gets (docs/api.md: 409 transaction_ended).
ENDED_STATUS = 409
_ENDED_JA, _ENDED_EN = messages("transaction_ended")
ENDED_BODY = json.dumps(
    {"error": {"code": "transaction_ended", "message_ja": _ENDED_JA, "message_en": _ENDED_EN}}, ensure_ascii=False
)

_SCRUB_ANSWERS = (
    update(IdempotencyRecord)
    .where(IdempotencyRecord.transaction_id == bindparam("of_transaction"))
    .values(status_code=ENDED_STATUS, body=ENDED_BODY)
)
_PURGE_OLD = delete(IdempotencyRecord).where(IdempotencyRecord.created_at < bindparam("older_than"))


def transaction_ended(tx: KioskTransaction) -> None:
    """Erase what the ended transaction `tx` leaves, in its session's database transaction:
    every stored answer of its idempotent requests becomes "transaction_ended" (the request
    ending it then stores its own answer, which names nobody), and the WAL is checkpointed
    after the commit. Raises ValueError for a transaction not attached to a session."""
    session = object_session(tx)
    if session is None:  # pragma: no cover - an ended transaction is always a loaded row
        raise ValueError("the transaction is not attached to a session")
    session.execute(_SCRUB_ANSWERS, {"of_transaction": tx.id})
    checkpoint_after_commit(session)


def purge_idempotency_records(factory: sessionmaker[Session], now: datetime) -> int:
    """Delete the idempotency records older than IDEMPOTENCY_RETENTION; returns how many."""
    with factory() as session, session.begin():
        purged = rows_matched(
            session.execute(
                _PURGE_OLD,
                {"older_than": now - IDEMPOTENCY_RETENTION},
                execution_options={"synchronize_session": False},
            )
        )
        if purged:
            checkpoint_after_commit(session)
    return purged
