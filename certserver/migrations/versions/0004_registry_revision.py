"""The configuration revision token and the triggers that change it.

Revision ID: 0004_registry_revision
Revises: 0003_transactions

Every INSERT, UPDATE or DELETE on a municipality configuration table sets
registry_revision.token to a new random value in the same transaction, so a process that
caches the configuration (certserver.db.repositories.registry_config) sees any change,
including one made by hand in SQL.
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0004_registry_revision"
down_revision = "0003_transactions"
branch_labels = None
depends_on = None

CONFIGURATION_TABLES = ("municipalities", "certificate_settings", "fees", "closures")
_OPERATIONS = ("INSERT", "UPDATE", "DELETE")


def upgrade() -> None:
    op.create_table(
        "registry_revision",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("token", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_registry_revision"),
    )
    op.execute(
        sa.text("INSERT INTO registry_revision (id, token) VALUES (1, :token)").bindparams(token=secrets.token_hex(16))
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION new_registry_revision() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE registry_revision SET token = md5(random()::text || clock_timestamp()::text) WHERE id = 1;
                RETURN NULL;
            END $$""")
        for table in CONFIGURATION_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_new_registry_revision AFTER INSERT OR UPDATE OR DELETE "
                f"OR TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION new_registry_revision()"
            )
        return
    for table in CONFIGURATION_TABLES:
        for operation in _OPERATIONS:
            op.execute(
                f"CREATE TRIGGER {table}_{operation.lower()}_new_registry_revision "
                f"AFTER {operation} ON {table} BEGIN "
                "UPDATE registry_revision SET token = lower(hex(randomblob(16))) WHERE id = 1; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in CONFIGURATION_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_new_registry_revision ON {table}")
        op.execute("DROP FUNCTION IF EXISTS new_registry_revision()")
    else:
        for table in CONFIGURATION_TABLES:
            for operation in _OPERATIONS:
                op.execute(f"DROP TRIGGER IF EXISTS {table}_{operation.lower()}_new_registry_revision")
    op.drop_table("registry_revision")
