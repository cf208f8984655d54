"""Kiosk registration and the kiosk credential every API call carries.

A kiosk authenticates with `Authorization: Bearer <kiosk_id>:<secret>`. The secret is shown
once at registration; the database keeps only its SHA-256.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from certserver.db.models.transactions import Kiosk

KIOSK_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class KioskError(Exception):
    """A kiosk registration that cannot be done (bad id, id taken)."""


class KioskAuthenticationError(Exception):
    """The request's kiosk credential is missing, malformed or wrong."""


@dataclass(frozen=True)
class KioskCredential:
    kiosk_id: str
    secret: str

    @property
    def bearer(self) -> str:
        """The value of the Authorization header."""
        return f"Bearer {self.kiosk_id}:{self.secret}"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def register_kiosk(session: Session, kiosk_id: str, store_name: str, now: datetime) -> KioskCredential:
    """Register a kiosk and return its credential (the only time the secret exists in clear).

    Raises KioskError for an id that is malformed or already registered, or an empty store name.
    """
    if not KIOSK_ID_PATTERN.match(kiosk_id):
        raise KioskError("kiosk id must be 1-64 characters of A-Z a-z 0-9 _ . - (starting with a letter or digit)")
    if not store_name.strip():
        raise KioskError("store name must not be empty")
    if session.get(Kiosk, kiosk_id) is not None:
        raise KioskError(f"kiosk {kiosk_id} is already registered")
    secret = secrets.token_urlsafe(32)
    session.add(
        Kiosk(id=kiosk_id, store_name=store_name.strip(), secret_sha256=_digest(secret), active=True, created_at=now)
    )
    session.flush()
    return KioskCredential(kiosk_id, secret)


def list_kiosks(session: Session) -> list[Kiosk]:
    return list(session.scalars(select(Kiosk).order_by(Kiosk.id)))


def parse_authorization(header: str | None) -> tuple[str, str]:
    """(kiosk_id, secret) from an Authorization header.

    Raises KioskAuthenticationError when the header is missing or not `Bearer id:secret`.
    """
    if not header:
        raise KioskAuthenticationError("missing Authorization header")
    scheme, _, token = header.partition(" ")
    kiosk_id, sep, secret = token.strip().partition(":")
    if scheme.lower() != "bearer" or not sep or not kiosk_id or not secret:
        raise KioskAuthenticationError("Authorization must be 'Bearer <kiosk_id>:<secret>'")
    return kiosk_id, secret


# Built once: every request runs it, and building a statement costs more than running it.
_KIOSK_FOR_UPDATE = select(Kiosk).where(Kiosk.id == bindparam("kiosk_id")).with_for_update()


def authenticate_kiosk(session: Session, kiosk_id: str, secret: str) -> Kiosk:
    """The active kiosk whose credential this is, locked for the rest of the request.

    Locking the kiosk row serializes one kiosk's requests (a kiosk does one thing at a time),
    which makes idempotency checks and "one open transaction per kiosk" race-free on
    PostgreSQL; SQLite serializes all writers anyway.

    Raises KioskAuthenticationError for an unknown or inactive kiosk or a wrong secret.
    """
    if not KIOSK_ID_PATTERN.match(kiosk_id):
        raise KioskAuthenticationError("unknown kiosk or wrong secret")
    kiosk = session.execute(_KIOSK_FOR_UPDATE, {"kiosk_id": kiosk_id}).scalar_one_or_none()
    expected = kiosk.secret_sha256 if kiosk is not None else _digest("")
    # Compare even for an unknown kiosk, so timing does not tell which ids exist.
    matches = hmac.compare_digest(expected, _digest(secret))
    if kiosk is None or not matches or not kiosk.active:
        raise KioskAuthenticationError("unknown kiosk or wrong secret")
    return kiosk
