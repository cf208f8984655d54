"""The test JPKI CA's records: every card certificate it issued or that an operator enrolled,
with its revocation and the municipality that applied for it, and the external CAs an
operator chose to trust for enrolled real cards. They name no resident: which resident holds
a card is the applying municipality's record (`certserver.db.models.registry.ResidentCard`).

The OCSP responder, the CRLs and the kiosk's card authentication all read these rows, so a
revocation is seen by all three at once (one source of truth, visible to every worker).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from certserver.db.base import Base, UtcDateTime


class CertificatePurpose(StrEnum):
    AUTH = "auth"  # 利用者証明用電子証明書
    SIGN = "sign"  # 署名用電子証明書


class CertificateStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"  # 失効


class CardCertificate(Base):
    """One card certificate (auth or sign). The two of one card share `card_id`."""

    __tablename__ = "card_certificates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    serial: Mapped[str] = mapped_column(String(40), unique=True)  # upper-case hex, even length
    card_id: Mapped[str] = mapped_column(String(32), index=True)  # random; groups a card's certificates
    # The municipality that applied for the card at its window: the JPKI service knows that
    # and nothing about the holder beyond what the certificate carries (分散管理). Which
    # resident holds the serial is the municipality's record (`resident_cards`).
    municipality_code: Mapped[str] = mapped_column(String(5), index=True)
    purpose: Mapped[str] = mapped_column(String(8))
    subject_cn: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    not_before: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    not_after: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    status: Mapped[str] = mapped_column(String(16), default=CertificateStatus.ACTIVE.value)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    revocation_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    card_file: Mapped[str | None] = mapped_column(String(1024), nullable=True)  # where `card issue` wrote it
    # True for a real card's certificate an operator enrolled for a demo resident; its
    # issuer is then `trusted_ca_id`, not this service's CA.
    enrolled_real_card: Mapped[bool] = mapped_column(Boolean, default=False)
    trusted_ca_id: Mapped[int | None] = mapped_column(ForeignKey("trusted_cas.id"), nullable=True)
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (
        CheckConstraint("purpose IN ('auth', 'sign')", name="purpose_known"),
        CheckConstraint("status IN ('active', 'revoked')", name="status_known"),
        CheckConstraint("(status = 'revoked') = (revoked_at IS NOT NULL)", name="revoked_has_time"),
        CheckConstraint("enrolled_real_card = (trusted_ca_id IS NOT NULL)", name="enrolled_has_ca"),
    )

    @property
    def is_revoked(self) -> bool:
        return self.status == CertificateStatus.REVOKED


class TrustedCa(Base):
    """An external CA (e.g. a real J-LIS user-authentication root) the operator trusts for
    enrolled real cards. Only certificates enrolled one by one are accepted under it."""

    __tablename__ = "trusted_cas"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint_sha256: Mapped[str] = mapped_column(String(64), unique=True)  # lower-case hex
    subject: Mapped[str] = mapped_column(String(1024))  # RFC 4514 text, for people
    purpose: Mapped[str] = mapped_column(String(8), default=CertificatePurpose.AUTH.value)
    added_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
