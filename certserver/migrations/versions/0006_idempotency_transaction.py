"""Idempotency records name their transaction, so its end can scrub them.

Revision ID: 0006_idempotency_transaction
Revises: 0005_print_outcomes

A stored answer (a menu, an order) names residents; with the transaction's id beside it,
the service replaces it by "transaction_ended" when the transaction ends
(certserver.services.retention), and the sweep deletes records by age (created_at index).
Records written before this revision have no transaction id: the age limit removes them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_idempotency_transaction"
down_revision = "0005_print_outcomes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_records") as batch:
        batch.add_column(sa.Column("transaction_id", sa.String(64), nullable=True))
        batch.create_index("ix_idempotency_records_transaction_id", ["transaction_id"])
        batch.create_index("ix_idempotency_records_created_at", ["created_at"])


def downgrade() -> None:
    with op.batch_alter_table("idempotency_records") as batch:
        batch.drop_index("ix_idempotency_records_created_at")
        batch.drop_index("ix_idempotency_records_transaction_id")
        batch.drop_column("transaction_id")
