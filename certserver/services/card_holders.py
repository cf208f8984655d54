"""The municipality's side of a card: which of its residents holds a certificate serial.

The JPKI service vouches for the certificate (valid, not revoked, applied for by
municipality M); only M's own record (`resident_cards`) says who holds it. Kept apart so
that the JPKI record never names a resident (分散管理), and so that the lookup moves with
the municipality's store when the municipalities get servers of their own.
"""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from certserver.db.models.registry import ResidentCard
from certserver.pki.validation import CertificateNotRegisteredError, ValidatedCard

_HOLDER = select(ResidentCard.resident_id).where(
    ResidentCard.serial == bindparam("serial"), ResidentCard.municipality_code == bindparam("municipality_code")
)


def holder_of_card(session: Session, card: ValidatedCard) -> str:
    """The resident id of the card's holder in the municipality that applied for it.

    Raises CertificateNotRegisteredError when that municipality has no such card (a record
    lost or never made: the card cannot be used until the window registers it again)."""
    return holder_of_serial(session, card.serial, card.municipality_code)


def holder_of_serial(session: Session, serial: str, municipality_code: str) -> str:
    """The resident id of the holder of certificate `serial` in the municipality that
    applied for it. Raises CertificateNotRegisteredError (see `holder_of_card`)."""
    resident_id = session.scalar(_HOLDER, {"serial": serial, "municipality_code": municipality_code})
    if resident_id is None:
        raise CertificateNotRegisteredError(f"municipality {municipality_code} holds no card {serial}")
    return resident_id
