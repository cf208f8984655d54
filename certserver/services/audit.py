"""The append-only, hash-chained audit log.

Every step of every transaction is one entry: when, which kiosk, which transaction, which
card certificate serial, what was tried and how it ended. Each entry's hash covers its
canonical fields and the previous entry's hash, so changing or deleting any entry breaks
the chain from there on; the `audit_head` row remembers the newest entry, so deleting the
newest entries is detected too.

Appends serialize on the `audit_head` row (SELECT ... FOR UPDATE on PostgreSQL; on SQLite
the service runs every transaction as BEGIN IMMEDIATE, see certserver.app), and the
sequence number is the primary key, so two writers can never fork the chain. The sequence is
therefore the order of commits, and an entry is never dated before the one it follows: not
when two requests read the clock in one order and commit in the other, not across a restart
with an earlier --pretend-time, not when a command's clock lags the service's.

Never written here: a PIN (the server never sees one), document content, a resident's
name, address or id. `detail` keys are checked against a deny list as a last guard.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from certserver.clock import as_utc
from certserver.db.base import table_of
from certserver.db.models.transactions import AuditEntry, AuditHead

GENESIS_HASH = "0" * 64
AUDIT_HEAD_ID = 1

# Keys that would mean someone is about to log what must never be logged.
_FORBIDDEN_DETAIL_KEYS = frozenset(
    {"pin", "password", "pdf", "content", "name", "names", "address", "resident_id", "my_number", "birth_date"}
)


# Built once, on the tables rather than the ORM classes: an append runs several times per
# request, and constructing the statements and passing them through the ORM's bulk
# machinery cost more than executing them.
_ENTRIES = table_of(AuditEntry)
_HEAD = table_of(AuditHead)
# The head with its newest entry's time, in the one statement that locks the head.
_READ_HEAD = (
    select(_HEAD.c.last_seq, _HEAD.c.last_hash, _ENTRIES.c.at.label("last_at"))
    .select_from(_HEAD.outerjoin(_ENTRIES, _ENTRIES.c.seq == _HEAD.c.last_seq))
    .where(_HEAD.c.id == AUDIT_HEAD_ID)
    .with_for_update(of=_HEAD)
)
_LAST_AT = (
    select(_ENTRIES.c.at)
    .select_from(_HEAD.join(_ENTRIES, _ENTRIES.c.seq == _HEAD.c.last_seq))
    .where(_HEAD.c.id == AUDIT_HEAD_ID)
)
_APPEND = insert(_ENTRIES)
_MOVE_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == AUDIT_HEAD_ID)
    .values(last_seq=bindparam("new_seq"), last_hash=bindparam("new_hash"))
)


class AuditLogError(Exception):
    """The audit log cannot be appended to (missing head row, forbidden detail)."""


@dataclass(frozen=True)
class ChainReport:
    """The result of `verify_chain`: ok, or the first entry where the chain breaks."""

    ok: bool
    entries_checked: int
    broken_at_seq: int | None = None
    problem: str | None = None


def _canonical_time(at: datetime) -> str:
    # SQLite gives back naive datetimes, PostgreSQL aware ones in the session's zone:
    # hash one UTC spelling so both read back to the same bytes.
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(
    *,
    seq: int,
    at: datetime,
    action: str,
    outcome: str,
    kiosk_id: str | None,
    transaction_id: str | None,
    card_serial: str | None,
    detail: str,
    prev_hash: str,
) -> str:
    """SHA-256 (hex) over the canonical JSON of an entry's fields and its predecessor's hash."""
    canonical = json.dumps(
        [seq, _canonical_time(at), action, outcome, kiosk_id, transaction_id, card_serial, detail, prev_hash],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _canonical_detail(detail: Mapping[str, object] | None) -> str:
    detail = dict(detail or {})
    forbidden = _FORBIDDEN_DETAIL_KEYS.intersection(k.lower() for k in detail)
    if forbidden:
        raise AuditLogError(f"audit detail must not carry {sorted(forbidden)}")
    return json.dumps(detail, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def record(
    session: Session,
    *,
    at: datetime,
    action: str,
    outcome: str,
    kiosk_id: str | None = None,
    transaction_id: str | None = None,
    card_serial: str | None = None,
    detail: Mapping[str, object] | None = None,
) -> int:
    """Append one entry in the caller's transaction (it commits or rolls back with it);
    returns its sequence number.

    `at` is the caller's reading of the service clock; the entry carries it, or the previous
    entry's time when that is later, so that the log's times never go backwards.

    Raises AuditLogError when the head row is missing (database not migrated) or `detail`
    names a forbidden key.
    """
    detail_json = _canonical_detail(detail)
    # The session's connection directly: these touch no ORM object, and the session's own
    # execute path (plugins, autoflush bookkeeping) cost more than the statements. A flush
    # first, so that ORM changes of this request precede the entry, as before.
    session.flush()
    connection = session.connection()
    head = connection.execute(_READ_HEAD).one_or_none()
    if head is None:
        raise AuditLogError("audit_head row is missing: the database is not migrated")
    seq = head.last_seq + 1
    if head.last_at is not None and as_utc(head.last_at) > as_utc(at):
        at = as_utc(head.last_at)
    fields = {
        "seq": seq,
        "at": at,
        "action": action,
        "outcome": outcome,
        "kiosk_id": kiosk_id,
        "transaction_id": transaction_id,
        "card_serial": card_serial,
        "detail": detail_json,
        "prev_hash": head.last_hash,
    }
    digest = entry_hash(**fields)
    connection.execute(_APPEND, {**fields, "entry_hash": digest})
    connection.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": digest})
    return seq


def last_recorded_at(session: Session) -> datetime | None:
    """The time of the newest entry (aware, UTC), or None for an empty log."""
    at = session.connection().execute(_LAST_AT).scalar_one_or_none()
    return None if at is None else as_utc(at)


def verify_chain(session: Session) -> ChainReport:
    """Recompute the chain from the first entry; report the first changed, missing or
    reordered entry, or a head that no longer matches the newest entry.

    The head is read first and the chain checked up to it: the service may append while
    this reads (the CLI beside a live service), and these reads are not one snapshot
    (SQLite outside a write transaction, PostgreSQL's read committed). Entries are only
    ever appended after the head, so the head read first still ends what was read after.
    """
    head = session.execute(
        select(AuditHead).where(AuditHead.id == AUDIT_HEAD_ID).execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if head is None:
        return ChainReport(False, 0, None, "audit_head row is missing")
    rows = session.execute(
        select(AuditEntry)
        .where(AuditEntry.seq <= head.last_seq)
        .order_by(AuditEntry.seq)
        .execution_options(yield_per=1000)
    )
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    entries = iter(rows.scalars())
    while True:
        try:
            entry = next(entries, None)
        except (ValueError, TypeError) as exc:
            # A value its column type cannot read (SQLite keeps any text in any column).
            return ChainReport(
                False,
                checked,
                expected_seq,
                f"this entry or one of the next cannot be read ({exc.__class__.__name__}): the table is damaged",
            )
        if entry is None:
            break
        if entry.seq != expected_seq:
            return ChainReport(False, checked, expected_seq, f"entry {expected_seq} is missing")
        if entry.prev_hash != expected_prev:
            return ChainReport(False, checked, entry.seq, "prev_hash does not match the previous entry")
        digest = entry_hash(
            seq=entry.seq,
            at=entry.at,
            action=entry.action,
            outcome=entry.outcome,
            kiosk_id=entry.kiosk_id,
            transaction_id=entry.transaction_id,
            card_serial=entry.card_serial,
            detail=entry.detail,
            prev_hash=entry.prev_hash,
        )
        if digest != entry.entry_hash:
            return ChainReport(False, checked, entry.seq, "entry was changed after it was written")
        expected_prev = digest
        expected_seq += 1
        checked += 1
    if head.last_seq != checked or head.last_hash != expected_prev:
        return ChainReport(False, checked, checked + 1, f"the newest entries after {checked} were removed")
    return ChainReport(True, checked)
