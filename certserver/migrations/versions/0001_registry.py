"""Resident registry: municipalities, certificate settings, fees, closures, households,
residents, seal registrations, tax records, 戸籍 with members and 附票, 本籍地 利用登録.

Hand-written to match certserver/db/models/registry.py exactly, constraint names included
(tests/certserver/test_migrations.py compares the migrated schema with the models).
Check constraints are named with op.f(): the metadata's naming convention would otherwise
prefix "ck_<table>_" a second time.

Revision ID: 0001_registry
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_registry"
down_revision = None
branch_labels = None
depends_on = None


def _fk(table: str, column: str, target: str, ondelete: str | None = None) -> sa.ForeignKeyConstraint:
    referred_table, _referred_column = target.split(".")
    return sa.ForeignKeyConstraint([column], [target], name=f"fk_{table}_{column}_{referred_table}", ondelete=ondelete)


def _index(table: str, column: str) -> None:
    op.create_index(f"ix_{table}_{column}", table, [column])


def upgrade() -> None:
    op.create_table(
        "municipalities",
        sa.Column("code", sa.String(5), nullable=False),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("name_en", sa.String(60), nullable=False),
        sa.Column("prefecture", sa.String(10), nullable=False),
        sa.Column("mayor_title", sa.String(40), nullable=False),
        sa.Column("mayor_name", sa.String(40), nullable=False),
        sa.Column("participating", sa.Boolean(), nullable=False),
        sa.Column("participation_start", sa.Date(), nullable=True),
        sa.Column("stopped", sa.Boolean(), nullable=False),
        sa.Column("stop_reason", sa.String(200), nullable=True),
        sa.Column("allows_my_number_on_juminhyo", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_municipalities"),
    )
    op.create_table(
        "certificate_settings",
        sa.Column("municipality_code", sa.String(5), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("offered", sa.Boolean(), nullable=False),
        sa.Column("opens_at", sa.Time(), nullable=False),
        sa.Column("closes_at", sa.Time(), nullable=False),
        sa.Column("weekdays_only", sa.Boolean(), nullable=False),
        sa.Column("max_copies", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_code", "kind", name="pk_certificate_settings"),
        sa.CheckConstraint("max_copies >= 1", name=op.f("ck_certificate_settings_max_copies_positive")),
        sa.CheckConstraint("opens_at < closes_at", name=op.f("ck_certificate_settings_hours_ordered")),
        _fk("certificate_settings", "municipality_code", "municipalities.code", ondelete="CASCADE"),
    )
    op.create_table(
        "fees",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("municipality_code", sa.String(5), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("fee_yen", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("label", sa.String(60), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_fees"),
        sa.CheckConstraint("fee_yen >= 0", name=op.f("ck_fees_fee_not_negative")),
        sa.CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name=op.f("ck_fees_period_ordered")),
        _fk("fees", "municipality_code", "municipalities.code", ondelete="CASCADE"),
    )
    _index("fees", "municipality_code")
    op.create_table(
        "closures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("municipality_code", sa.String(5), nullable=True),
        sa.Column("closed_on", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_closures"),
        _fk("closures", "municipality_code", "municipalities.code", ondelete="CASCADE"),
    )
    _index("closures", "municipality_code")
    _index("closures", "closed_on")
    op.create_table(
        "households",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("municipality_code", sa.String(5), nullable=False),
        sa.Column("address", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_households"),
        _fk("households", "municipality_code", "municipalities.code"),
    )
    _index("households", "municipality_code")
    op.create_table(
        "residents",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("municipality_code", sa.String(5), nullable=False),
        sa.Column("household_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("name_kana", sa.String(120), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("sex", sa.String(2), nullable=False),
        sa.Column("address", sa.String(200), nullable=False),
        sa.Column("zokugara", sa.String(20), nullable=False),
        sa.Column("became_resident_on", sa.Date(), nullable=False),
        sa.Column("address_since", sa.Date(), nullable=False),
        sa.Column("previous_address", sa.String(200), nullable=True),
        sa.Column("honseki", sa.String(200), nullable=True),
        sa.Column("hitto_sha", sa.String(60), nullable=True),
        sa.Column("my_number", sa.String(12), nullable=True),
        sa.Column("juminhyo_code", sa.String(11), nullable=True),
        sa.Column("nationality", sa.String(60), nullable=True),
        sa.Column("residence_card_number", sa.String(12), nullable=True),
        sa.Column("residence_status", sa.String(60), nullable=True),
        sa.Column("period_of_stay", sa.String(40), nullable=True),
        sa.Column("period_expires_on", sa.Date(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("has_gaiji", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_residents"),
        sa.CheckConstraint(
            "status IN ('active', 'moved_out', 'deceased', 'dv_support', 'change_pending')",
            name=op.f("ck_residents_status_known"),
        ),
        _fk("residents", "municipality_code", "municipalities.code"),
        _fk("residents", "household_id", "households.id"),
        sa.UniqueConstraint("my_number", name="uq_residents_my_number"),
        sa.UniqueConstraint("juminhyo_code", name="uq_residents_juminhyo_code"),
    )
    _index("residents", "municipality_code")
    _index("residents", "household_id")
    op.create_table(
        "seal_registrations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("resident_id", sa.String(32), nullable=False),
        sa.Column("registration_number", sa.String(20), nullable=False),
        sa.Column("seal_text", sa.String(20), nullable=False),
        sa.Column("registered_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("cancelled_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_seal_registrations"),
        sa.CheckConstraint("status IN ('active', 'cancelled')", name=op.f("ck_seal_registrations_status_known")),
        _fk("seal_registrations", "resident_id", "residents.id"),
        sa.UniqueConstraint("registration_number", name="uq_seal_registrations_registration_number"),
    )
    _index("seal_registrations", "resident_id")
    op.create_table(
        "tax_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("resident_id", sa.String(32), nullable=False),
        sa.Column("fiscal_year", sa.Integer(), nullable=False),
        sa.Column("declared", sa.Boolean(), nullable=False),
        sa.Column("address_on_jan1", sa.String(200), nullable=False),
        sa.Column("total_income", sa.Integer(), nullable=False),
        sa.Column("salary_income", sa.Integer(), nullable=False),
        sa.Column("deductions_total", sa.Integer(), nullable=False),
        sa.Column("taxable_income", sa.Integer(), nullable=False),
        sa.Column("municipal_tax", sa.Integer(), nullable=False),
        sa.Column("prefectural_tax", sa.Integer(), nullable=False),
        sa.Column("dependents", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tax_records"),
        sa.UniqueConstraint("resident_id", "fiscal_year", name="uq_tax_records_resident_year"),
        _fk("tax_records", "resident_id", "residents.id"),
    )
    _index("tax_records", "resident_id")
    op.create_table(
        "koseki",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("municipality_code", sa.String(5), nullable=False),
        sa.Column("honseki", sa.String(200), nullable=False),
        sa.Column("hitto_sha", sa.String(60), nullable=False),
        sa.Column("compiled_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_koseki"),
        sa.CheckConstraint("status IN ('current', 'joseki', 'kaisei_gen')", name=op.f("ck_koseki_status_known")),
        _fk("koseki", "municipality_code", "municipalities.code"),
    )
    _index("koseki", "municipality_code")
    op.create_table(
        "koseki_members",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("koseki_id", sa.String(32), nullable=False),
        sa.Column("resident_id", sa.String(32), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("father", sa.String(60), nullable=True),
        sa.Column("mother", sa.String(60), nullable=True),
        sa.Column("zokugara", sa.String(20), nullable=False),
        sa.Column("is_hitto_sha", sa.Boolean(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("removed", sa.Boolean(), nullable=False),
        sa.Column("has_gaiji", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_koseki_members"),
        _fk("koseki_members", "koseki_id", "koseki.id"),
        _fk("koseki_members", "resident_id", "residents.id"),
    )
    _index("koseki_members", "koseki_id")
    _index("koseki_members", "resident_id")
    op.create_table(
        "fuhyo_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("member_id", sa.String(32), nullable=False),
        sa.Column("address", sa.String(200), nullable=False),
        sa.Column("since", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_fuhyo_entries"),
        _fk("fuhyo_entries", "member_id", "koseki_members.id"),
    )
    _index("fuhyo_entries", "member_id")
    op.create_table(
        "honseki_registrations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("resident_id", sa.String(32), nullable=False),
        sa.Column("municipality_code", sa.String(5), nullable=False),
        sa.Column("registered_on", sa.Date(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_honseki_registrations"),
        sa.UniqueConstraint("resident_id", "municipality_code", name="uq_honseki_registrations_resident_municipality"),
        sa.CheckConstraint(
            "effective_from >= registered_on", name=op.f("ck_honseki_registrations_effective_after_registration")
        ),
        _fk("honseki_registrations", "resident_id", "residents.id"),
        _fk("honseki_registrations", "municipality_code", "municipalities.code"),
    )
    _index("honseki_registrations", "resident_id")
    _index("honseki_registrations", "municipality_code")


def downgrade() -> None:
    for table in (
        "honseki_registrations",
        "fuhyo_entries",
        "koseki_members",
        "koseki",
        "tax_records",
        "seal_registrations",
        "residents",
        "households",
        "closures",
        "fees",
        "certificate_settings",
        "municipalities",
    ):
        op.drop_table(table)
