"""What the kiosk did with a released transaction: which documents it fetched, the refund
of a paid transaction that ended unprinted, and room for the state `released_unconfirmed`.

Revision ID: 0005_print_outcomes
Revises: 0004_registry_revision
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_print_outcomes"
down_revision = "0004_registry_revision"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("transactions") as batch:
        batch.alter_column("state", existing_type=sa.String(16), type_=sa.String(24), existing_nullable=False)
        batch.add_column(sa.Column("refunded_yen", sa.Integer(), nullable=True))
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("fetched_at")
    with op.batch_alter_table("transactions") as batch:
        batch.drop_column("refunded_yen")
        batch.alter_column("state", existing_type=sa.String(24), type_=sa.String(16), existing_nullable=False)
