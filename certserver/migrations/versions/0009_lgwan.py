"""The centre routes by the card's municipality; the municipality records the centre's orders.

Revision ID: 0009_lgwan
Revises: 0008_resident_cards

分散管理: the centre's transaction no longer names the resident who authenticated
(`resident_id`); it keeps the municipality that applied for the card (`card_applied_by`),
which its calls to that municipality carry with the serial. An open transaction at upgrade
time gets it from the JPKI record of its card. `lgwan_orders` is the municipality server's
record of each order call (numbered and rendered once per request id).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_lgwan"
down_revision = "0008_resident_cards"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("transactions") as batch:
        batch.add_column(sa.Column("card_applied_by", sa.String(6), nullable=True))
    op.execute(
        "UPDATE transactions SET card_applied_by = (SELECT c.municipality_code FROM card_certificates c "
        "WHERE c.serial = transactions.card_serial) WHERE card_serial IS NOT NULL"
    )
    with op.batch_alter_table("transactions") as batch:
        batch.drop_column("resident_id")
    op.create_table(
        "lgwan_orders",
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("municipality_code", sa.String(6), nullable=False),
        sa.Column("call_sha256", sa.String(64), nullable=False),
        sa.Column("card_serial", sa.String(64), nullable=False),
        sa.Column("certificate_numbers", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("request_id", name="pk_lgwan_orders"),
    )
    op.create_index("ix_lgwan_orders_municipality_code", "lgwan_orders", ["municipality_code"])
    op.create_index("ix_lgwan_orders_created_at", "lgwan_orders", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_lgwan_orders_created_at", table_name="lgwan_orders")
    op.drop_index("ix_lgwan_orders_municipality_code", table_name="lgwan_orders")
    op.drop_table("lgwan_orders")
    with op.batch_alter_table("transactions") as batch:
        batch.add_column(sa.Column("resident_id", sa.String(32), nullable=True))
    # The resident of an open transaction comes back from the municipality's card record.
    op.execute(
        "UPDATE transactions SET resident_id = (SELECT r.resident_id FROM resident_cards r "
        "WHERE r.serial = transactions.card_serial) WHERE card_serial IS NOT NULL AND open_for_kiosk IS NOT NULL"
    )
    with op.batch_alter_table("transactions") as batch:
        batch.drop_column("card_applied_by")
