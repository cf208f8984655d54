"""Kiosks, transactions, challenges, documents, idempotency records and the audit log.

Revision ID: 0003_transactions
Revises: 0002_pki
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_transactions"
down_revision = "0002_pki"
branch_labels = None
depends_on = None

GENESIS_HASH = "0" * 64  # prev_hash of the first audit entry (certserver.services.audit)


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "kiosks",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("store_name", sa.String(200), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_kiosks"),
    )
    op.create_table(
        "transactions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column(
            "kiosk_id",
            sa.String(64),
            sa.ForeignKey("kiosks.id", name="fk_transactions_kiosk_id_kiosks"),
            nullable=False,
        ),
        sa.Column("open_for_kiosk", sa.String(64), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
        _ts("ended_at", nullable=True),
        sa.Column("end_reason", sa.String(64), nullable=True),
        sa.Column("card_serial", sa.String(64), nullable=True),
        sa.Column("resident_id", sa.String(32), nullable=True),
        sa.Column("order_summary", sa.Text(), nullable=True),
        sa.Column("fee_total_yen", sa.Integer(), nullable=True),
        sa.Column("paid_yen", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_transactions"),
        sa.UniqueConstraint("open_for_kiosk", name="uq_transactions_open_for_kiosk"),
    )
    op.create_index("ix_transactions_kiosk_id", "transactions", ["kiosk_id"])
    op.create_index("ix_transactions_expires_at", "transactions", ["expires_at"])
    op.create_table(
        "challenges",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column(
            "transaction_id",
            sa.String(64),
            sa.ForeignKey("transactions.id", name="fk_challenges_transaction_id_transactions"),
            nullable=False,
        ),
        sa.Column(
            "kiosk_id", sa.String(64), sa.ForeignKey("kiosks.id", name="fk_challenges_kiosk_id_kiosks"), nullable=False
        ),
        sa.Column("nonce", sa.LargeBinary(64), nullable=False),
        _ts("expires_at"),
        _ts("used_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_challenges"),
        sa.UniqueConstraint("transaction_id", name="uq_challenges_transaction_id"),
    )
    op.create_table(
        "documents",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column(
            "transaction_id",
            sa.String(64),
            sa.ForeignKey("transactions.id", name="fk_documents_transaction_id_transactions"),
            nullable=False,
        ),
        sa.Column(
            "kiosk_id", sa.String(64), sa.ForeignKey("kiosks.id", name="fk_documents_kiosk_id_kiosks"), nullable=False
        ),
        sa.Column("card_serial", sa.String(64), nullable=False),
        sa.Column("issuer_code", sa.String(8), nullable=False),
        sa.Column("certificate_number", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("copy_index", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("pdf_sha256", sa.String(64), nullable=True),
        sa.Column("pdf", sa.LargeBinary(), nullable=True),
        _ts("created_at"),
        _ts("ended_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_documents"),
        sa.UniqueConstraint("issuer_code", "certificate_number", name="uq_documents_issuer_number"),
    )
    op.create_index("ix_documents_transaction_id", "documents", ["transaction_id"])
    op.create_table(
        "certificate_counters",
        sa.Column("issuer_code", sa.String(8), nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("issuer_code", name="pk_certificate_counters"),
    )
    op.create_table(
        "idempotency_records",
        sa.Column(
            "kiosk_id",
            sa.String(64),
            sa.ForeignKey("kiosks.id", name="fk_idempotency_records_kiosk_id_kiosks"),
            nullable=False,
        ),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("kiosk_id", "key", name="pk_idempotency_records"),
    )
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        _ts("at"),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.Column("kiosk_id", sa.String(64), nullable=True),
        sa.Column("transaction_id", sa.String(64), nullable=True),
        sa.Column("card_serial", sa.String(64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_entries"),
    )
    op.create_index("ix_audit_entries_transaction_id", "audit_entries", ["transaction_id"])
    audit_head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
    )
    op.bulk_insert(audit_head, [{"id": 1, "last_seq": 0, "last_hash": GENESIS_HASH}])


def downgrade() -> None:
    for table in (
        "audit_head",
        "audit_entries",
        "idempotency_records",
        "certificate_counters",
        "documents",
        "challenges",
        "transactions",
        "kiosks",
    ):
        op.drop_table(table)
