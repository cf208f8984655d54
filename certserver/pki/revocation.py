"""Revocation reasons (失効事由): the operator's words and the X.509 reason codes that the
CRLs and OCSP answers carry (RFC 5280 §5.3.1)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from cryptography import x509

from certserver.clock import as_utc


class RevocationReason(StrEnum):
    LOST = "lost"  # 紛失
    STOLEN = "stolen"  # 盗難
    MOVED_OUT = "moved_out"  # 転出 out of the emulated municipalities
    DECEASED = "deceased"  # 死亡
    ATTRIBUTES_CHANGED = "attributes_changed"  # 基本4情報の変更 (signing certificates)
    RENEWED = "renewed"  # 更新: replaced by a new certificate
    RETURNED = "returned"  # カードの返納
    KEY_COMPROMISE = "key_compromise"
    UNSPECIFIED = "unspecified"


_X509_REASONS = {
    # A lost or stolen card's key may be in someone else's hands.
    RevocationReason.LOST: x509.ReasonFlags.key_compromise,
    RevocationReason.STOLEN: x509.ReasonFlags.key_compromise,
    RevocationReason.KEY_COMPROMISE: x509.ReasonFlags.key_compromise,
    RevocationReason.MOVED_OUT: x509.ReasonFlags.affiliation_changed,
    RevocationReason.ATTRIBUTES_CHANGED: x509.ReasonFlags.affiliation_changed,
    RevocationReason.DECEASED: x509.ReasonFlags.cessation_of_operation,
    RevocationReason.RETURNED: x509.ReasonFlags.cessation_of_operation,
    RevocationReason.RENEWED: x509.ReasonFlags.superseded,
    RevocationReason.UNSPECIFIED: x509.ReasonFlags.unspecified,
}


def parse_reason(text: str) -> RevocationReason:
    """The reason named by `text` (e.g. "lost", "moved-out"). Raises ValueError listing the
    known ones."""
    try:
        return RevocationReason(text.strip().lower().replace("-", "_"))
    except ValueError:
        known = ", ".join(r.value for r in RevocationReason)
        raise ValueError(f"unknown revocation reason {text!r} (known: {known})") from None


def x509_reason(reason: str | None) -> x509.ReasonFlags:
    """The RFC 5280 reason code for a stored reason (unknown or None: unspecified)."""
    if reason is None:
        return x509.ReasonFlags.unspecified
    try:
        return _X509_REASONS[RevocationReason(reason)]
    except ValueError:
        return x509.ReasonFlags.unspecified


def revocation_date(revoked_at: dt.datetime, answer_time: dt.datetime) -> dt.datetime:
    """The revocation date a CRL or OCSP answer made at `answer_time` states: the recorded
    one, or the answer's own time when the record is dated later (a command whose clock ran
    ahead of the service's). Every revocation on record is in force now, and an answer never
    dates one after itself."""
    return min(as_utc(revoked_at), answer_time)
