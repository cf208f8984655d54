"""The centre reports each order's outcome to the municipality that made it.

Revision ID: 0010_outcome_reports
Revises: 0009_lgwan

The centre keeps the request id of the order call on the transaction and an outbox of
outcomes (`outcome_reports`), written with the ending it reports and delivered by the sweep;
the municipality's record of the order keeps which numbers were printed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_outcome_reports"
down_revision = "0009_lgwan"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("transactions") as batch:
        batch.add_column(sa.Column("lgwan_request_id", sa.String(64), nullable=True))
    with op.batch_alter_table("lgwan_orders") as batch:
        batch.add_column(sa.Column("issued_numbers", sa.Text(), nullable=False, server_default=""))
    op.create_table(
        "outcome_reports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("transaction_id", sa.String(64), nullable=False),
        sa.Column("municipality_code", sa.String(6), nullable=False),
        sa.Column("order_request_id", sa.String(64), nullable=False),
        sa.Column("issued", sa.Text(), nullable=False),
        sa.Column("withdrawn", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outcome_reports"),
    )
    op.create_index("ix_outcome_reports_delivered_at", "outcome_reports", ["delivered_at"])


def downgrade() -> None:
    op.drop_index("ix_outcome_reports_delivered_at", table_name="outcome_reports")
    op.drop_table("outcome_reports")
    with op.batch_alter_table("lgwan_orders") as batch:
        batch.drop_column("issued_numbers")
    with op.batch_alter_table("transactions") as batch:
        batch.drop_column("lgwan_request_id")
