"""Card authentication by challenge and response.

The server gives each transaction one random 32-byte challenge with a short lifetime; the
card signs it with its user-authentication key (the PIN is checked by the card, never seen
here). A challenge is consumed by the first attempt to use it, whatever the outcome, so a
signature can never be replayed, and it belongs to one transaction of one kiosk, so a
signature made at one kiosk is worthless at another.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from certserver.db.models.transactions import Challenge
from certserver.refusals import CodedRefusal

CHALLENGE_BYTES = 32


class ChallengeError(CodedRefusal):
    """A challenge that cannot be used (already used, expired, missing); `code` is stable."""


# Built once: every authentication runs it.
_CHALLENGE_FOR_UPDATE = (
    select(Challenge)
    .where(Challenge.transaction_id == bindparam("transaction_id"), Challenge.kiosk_id == bindparam("kiosk_id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)


def issue_challenge(
    session: Session, *, transaction_id: str, kiosk_id: str, now: datetime, ttl_seconds: int
) -> Challenge:
    """A fresh challenge for the transaction (one per transaction)."""
    challenge = Challenge(
        transaction_id=transaction_id,
        kiosk_id=kiosk_id,
        nonce=secrets.token_bytes(CHALLENGE_BYTES),
        expires_at=now + timedelta(seconds=ttl_seconds),
        used_at=None,
    )
    session.add(challenge)
    session.flush()
    return challenge


def as_utc(at: datetime) -> datetime:
    """`at` as an aware UTC datetime (SQLite returns naive ones; everything stored is UTC)."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def consume_challenge(session: Session, *, transaction_id: str, kiosk_id: str, now: datetime) -> bytes:
    """Mark the transaction's challenge used and return its bytes.

    The caller commits even when the signature then turns out bad: a tried challenge is spent.
    Raises ChallengeError "challenge_used", "challenge_expired" or "challenge_missing".
    """
    challenge = session.execute(
        _CHALLENGE_FOR_UPDATE, {"transaction_id": transaction_id, "kiosk_id": kiosk_id}
    ).scalar_one_or_none()
    if challenge is None:
        raise ChallengeError.of("challenge_missing")
    if challenge.used_at is not None:
        raise ChallengeError.of("challenge_used")
    challenge.used_at = now
    session.flush()
    if now >= as_utc(challenge.expires_at):
        raise ChallengeError.of("challenge_expired")
    return challenge.nonce
