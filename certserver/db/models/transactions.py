"""Models of the kiosk-facing side: kiosks, transactions, challenges, issued documents,
idempotency records and the audit log (see certserver/db/models/__init__.py).

Every row a kiosk can reach is addressed by an unguessable id and bound to the kiosk and
(after authentication) to the card certificate's serial; nothing is ever looked up as
"the next" or "the latest" (Yokohama 2023, service.md §7).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from certserver.db.base import Base, UtcDateTime

ID_LENGTH = 64  # secrets.token_urlsafe(32) is 43 characters; room to spare


class Kiosk(Base):
    """A registered multi-copy machine. Only a hash of its secret is kept."""

    __tablename__ = "kiosks"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    store_name: Mapped[str] = mapped_column(String(200))
    # SHA-256 of a 256-bit random secret: a slow password hash buys nothing for a secret
    # that cannot be guessed, and would cost every API call.
    secret_sha256: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class KioskTransaction(Base):
    """One person's visit: started -> authenticated -> ordered -> paid -> released -> printed,
    or cancelled / expired / failed, or released_unconfirmed (released, then ended before the
    kiosk said what it printed). Never deleted: it is part of the record."""

    __tablename__ = "transactions"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    kiosk_id: Mapped[str] = mapped_column(ForeignKey("kiosks.id"), index=True)
    # Equal to kiosk_id while the transaction is open, NULL once it ended: the unique
    # constraint makes "one open transaction per kiosk" a fact of the database, not of
    # one process's memory (Takamatsu 2024: several servers).
    open_for_kiosk: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    state: Mapped[str] = mapped_column(String(24))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    card_serial: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The municipality that applied for the card (its 住所地, from the JPKI record): where the
    # centre routes the holder's requests. The centre never learns who the holder is.
    card_applied_by: Mapped[str | None] = mapped_column(String(6), nullable=True)
    # The request id of the order call the municipality answered: its outcome is reported under it.
    lgwan_request_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True)
    order_summary: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON, for replies
    fee_total_yen: Mapped[int | None] = mapped_column(Integer, nullable=True)
    paid_yen: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The fee the kiosk gave back: a paid transaction that ended unprinted owes it.
    refunded_yen: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Challenge(Base):
    """A random challenge the card signs; single use, short-lived, bound to one transaction."""

    __tablename__ = "challenges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    transaction_id: Mapped[str] = mapped_column(ForeignKey("transactions.id"), unique=True)
    kiosk_id: Mapped[str] = mapped_column(ForeignKey("kiosks.id"))
    nonce: Mapped[bytes] = mapped_column(LargeBinary(64))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class IssuedDocument(Base):
    """One certificate document. The PDF lives here only until the transaction ends; the
    number, hashes and status stay for verification."""

    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("issuer_code", "certificate_number", name="uq_documents_issuer_number"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    transaction_id: Mapped[str] = mapped_column(ForeignKey("transactions.id"), index=True)
    kiosk_id: Mapped[str] = mapped_column(ForeignKey("kiosks.id"))
    card_serial: Mapped[str] = mapped_column(String(64))
    issuer_code: Mapped[str] = mapped_column(String(8))
    certificate_number: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(32))
    copy_index: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # pending / issued / withdrawn
    content_sha256: Mapped[str] = mapped_column(String(64))  # of CertificateContent.canonical_json
    pdf_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pdf: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # When the kiosk first downloaded the PDF: only a fetched document can have been printed.
    fetched_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class CertificateCounter(Base):
    """The last certificate number an issuer gave; one row per municipality."""

    __tablename__ = "certificate_counters"

    issuer_code: Mapped[str] = mapped_column(String(8), primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer)


class IdempotencyRecord(Base):
    """The stored answer to a POST carrying an Idempotency-Key, per kiosk. Scrubbed to
    "transaction_ended" when its transaction ends, deleted after a retention period
    (certserver.services.retention)."""

    __tablename__ = "idempotency_records"

    kiosk_id: Mapped[str] = mapped_column(ForeignKey("kiosks.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    # The transaction the request acted on or started; no foreign key, like the audit log.
    transaction_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True, index=True)


class AuditEntry(Base):
    """One step of one transaction, chained to the previous entry by its hash."""

    __tablename__ = "audit_entries"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    action: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(64))
    kiosk_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    transaction_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True, index=True)
    card_serial: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[str] = mapped_column(Text)  # canonical JSON; never a PIN or content
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The single lock row appends serialize on; it also remembers the last entry, so that
    deleting the newest entries is detected too."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))


class OutcomeReport(Base):
    """The centre's outbox of order outcomes to report to a municipality: written in the
    same database transaction as the ending it reports, delivered (and retried) by the
    sweep, so that a lost call or a restart never loses one."""

    __tablename__ = "outcome_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    transaction_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    municipality_code: Mapped[str] = mapped_column(String(6))
    order_request_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    issued: Mapped[str] = mapped_column(Text)  # space-separated certificate numbers
    withdrawn: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
