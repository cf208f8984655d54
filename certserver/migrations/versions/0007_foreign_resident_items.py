"""Foreign residents' 通称 and 住民基本台帳法 第30条の45 区分.

Revision ID: 0007_foreign_resident_items
Revises: 0006_idempotency_transaction

A foreign resident's 住民票 prints the 通称 (a name registered for daily use, where one is)
with the name, and the 区分 of 第30条の45 (中長期在留者, 特別永住者, 一時庇護許可者,
仮滞在許可者, 出生による経過滞在者, 国籍喪失による経過滞在者). Neither can be derived from the
other columns in general; rows written before this revision have neither, and the service
then derives the 区分 from the 在留資格 and 在留カード (特別永住者 / 中長期在留者).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_foreign_resident_items"
down_revision = "0006_idempotency_transaction"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("residents") as batch:
        batch.add_column(sa.Column("tsusho", sa.String(60), nullable=True))
        batch.add_column(sa.Column("foreign_resident_category", sa.String(20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("residents") as batch:
        batch.drop_column("foreign_resident_category")
        batch.drop_column("tsusho")
