"""The JPKI record of a card certificate names the applying municipality, not the resident.

Revision ID: 0008_resident_cards
Revises: 0007_foreign_resident_items

分散管理: the JPKI service knows, of each certificate it issued, which municipality applied for
it; which resident holds it is that municipality's own record. `card_certificates` loses
`resident_id` and gains `municipality_code`; the new `resident_cards` table (the
municipality's) maps each certificate serial to its holder. Existing rows are carried over:
each certificate's municipality is its holder's municipality at the time of the upgrade.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_resident_cards"
down_revision = "0007_foreign_resident_items"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resident_cards",
        sa.Column("serial", sa.String(40), nullable=False),
        sa.Column("card_id", sa.String(32), nullable=False),
        sa.Column("resident_id", sa.String(32), nullable=False),
        sa.Column("municipality_code", sa.String(5), nullable=False),
        sa.PrimaryKeyConstraint("serial", name="pk_resident_cards"),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"], name="fk_resident_cards_resident_id_residents"),
        sa.ForeignKeyConstraint(
            ["municipality_code"], ["municipalities.code"], name="fk_resident_cards_municipality_code_municipalities"
        ),
    )
    op.create_index("ix_resident_cards_card_id", "resident_cards", ["card_id"])
    op.create_index("ix_resident_cards_resident_id", "resident_cards", ["resident_id"])
    op.create_index("ix_resident_cards_municipality_code", "resident_cards", ["municipality_code"])
    op.execute(
        "INSERT INTO resident_cards (serial, card_id, resident_id, municipality_code) "
        "SELECT c.serial, c.card_id, c.resident_id, r.municipality_code "
        "FROM card_certificates c JOIN residents r ON r.id = c.resident_id"
    )
    with op.batch_alter_table("card_certificates") as batch:
        batch.add_column(sa.Column("municipality_code", sa.String(5), nullable=True))
    op.execute(
        "UPDATE card_certificates SET municipality_code = "
        "(SELECT r.municipality_code FROM residents r WHERE r.id = card_certificates.resident_id)"
    )
    op.drop_index("ix_card_certificates_resident_id", table_name="card_certificates")
    with op.batch_alter_table("card_certificates") as batch:
        batch.alter_column("municipality_code", existing_type=sa.String(5), nullable=False)
        batch.drop_constraint("fk_card_certificates_resident_id_residents", type_="foreignkey")
        batch.drop_column("resident_id")
    op.create_index("ix_card_certificates_municipality_code", "card_certificates", ["municipality_code"])


def downgrade() -> None:
    op.drop_index("ix_card_certificates_municipality_code", table_name="card_certificates")
    with op.batch_alter_table("card_certificates") as batch:
        batch.add_column(sa.Column("resident_id", sa.String(32), nullable=True))
    op.execute(
        "UPDATE card_certificates SET resident_id = "
        "(SELECT h.resident_id FROM resident_cards h WHERE h.serial = card_certificates.serial)"
    )
    with op.batch_alter_table("card_certificates") as batch:
        batch.alter_column("resident_id", existing_type=sa.String(32), nullable=False)
        batch.create_foreign_key("fk_card_certificates_resident_id_residents", "residents", ["resident_id"], ["id"])
        batch.drop_column("municipality_code")
    op.create_index("ix_card_certificates_resident_id", "card_certificates", ["resident_id"])
    op.drop_index("ix_resident_cards_municipality_code", table_name="resident_cards")
    op.drop_index("ix_resident_cards_resident_id", table_name="resident_cards")
    op.drop_index("ix_resident_cards_card_id", table_name="resident_cards")
    op.drop_table("resident_cards")
