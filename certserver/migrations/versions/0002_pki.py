"""Test JPKI CA records: card certificates (issued or enrolled) and trusted external CAs.

Revision ID: 0002_pki
Revises: 0001_registry
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_pki"
down_revision = "0001_registry"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "trusted_cas",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("fingerprint_sha256", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(1024), nullable=False),
        sa.Column("purpose", sa.String(8), nullable=False),
        _ts("added_at"),
        sa.Column("certificate_der", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_trusted_cas"),
        sa.UniqueConstraint("fingerprint_sha256", name="uq_trusted_cas_fingerprint_sha256"),
    )
    op.create_table(
        "card_certificates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("serial", sa.String(40), nullable=False),
        sa.Column("card_id", sa.String(32), nullable=False),
        sa.Column("resident_id", sa.String(32), nullable=False),
        sa.Column("purpose", sa.String(8), nullable=False),
        sa.Column("subject_cn", sa.String(64), nullable=False),
        _ts("issued_at"),
        _ts("not_before"),
        _ts("not_after"),
        sa.Column("status", sa.String(16), nullable=False),
        _ts("revoked_at", nullable=True),
        sa.Column("revocation_reason", sa.String(32), nullable=True),
        sa.Column("card_file", sa.String(1024), nullable=True),
        sa.Column("enrolled_real_card", sa.Boolean(), nullable=False),
        sa.Column("trusted_ca_id", sa.Integer(), nullable=True),
        sa.Column("certificate_der", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_card_certificates"),
        sa.UniqueConstraint("serial", name="uq_card_certificates_serial"),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"], name="fk_card_certificates_resident_id_residents"),
        sa.ForeignKeyConstraint(
            ["trusted_ca_id"], ["trusted_cas.id"], name="fk_card_certificates_trusted_ca_id_trusted_cas"
        ),
        sa.CheckConstraint("purpose IN ('auth', 'sign')", name=op.f("ck_card_certificates_purpose_known")),
        sa.CheckConstraint("status IN ('active', 'revoked')", name=op.f("ck_card_certificates_status_known")),
        sa.CheckConstraint(
            "(status = 'revoked') = (revoked_at IS NOT NULL)", name=op.f("ck_card_certificates_revoked_has_time")
        ),
        sa.CheckConstraint(
            "enrolled_real_card = (trusted_ca_id IS NOT NULL)", name=op.f("ck_card_certificates_enrolled_has_ca")
        ),
    )
    op.create_index("ix_card_certificates_card_id", "card_certificates", ["card_id"])
    op.create_index("ix_card_certificates_resident_id", "card_certificates", ["resident_id"])


def downgrade() -> None:
    op.drop_index("ix_card_certificates_resident_id", table_name="card_certificates")
    op.drop_index("ix_card_certificates_card_id", table_name="card_certificates")
    op.drop_table("card_certificates")
    op.drop_table("trusted_cas")
