"""The LGWAN migrations (0009_lgwan, 0010_outcome_reports) create exactly the tables and
columns the models describe, and carry an open transaction over: it keeps the municipality
of its card instead of the resident who authenticated, and gets the resident back on the
way down."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from pki_support import database_at, insert_card_row
from sqlalchemy import inspect, text
from sqlalchemy.orm import sessionmaker

from certserver.db.models import Base
from certserver.db.session import make_engine, transaction

LGWAN_TABLES = frozenset({"lgwan_orders", "outcome_reports", "transactions"})


def test_the_lgwan_migrations_match_the_models(db_url: str) -> None:
    def only_lgwan(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
        table = obj if type_ == "table" else getattr(obj, "table", None)
        return (name if type_ == "table" else getattr(table, "name", None)) in LGWAN_TABLES

    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"include_object": only_lgwan, "compare_type": True})
            assert list(compare_metadata(context, Base.metadata)) == []
    finally:
        engine.dispose()


def test_an_open_transaction_keeps_its_cards_municipality_over_the_upgrade_and_its_resident_back(
    tmp_path: Path,
) -> None:
    config, engine = database_at(tmp_path, "0008_resident_cards")
    try:
        insert_card_row(engine, "municipality_code", "08217")
        with transaction(sessionmaker(engine)) as session:
            session.execute(
                text(
                    "INSERT INTO resident_cards (serial, card_id, resident_id, municipality_code) "
                    "VALUES ('0A', :card, 'toride-0001', '08217')"
                ),
                {"card": "c" * 32},
            )
            session.execute(
                text(
                    "INSERT INTO kiosks (id, store_name, secret_sha256, active, created_at) "
                    "VALUES ('K1', 's', :h, 1, :t)"
                ),
                {"h": "0" * 64, "t": "2026-01-01 00:00:00"},
            )
            session.execute(
                text(
                    "INSERT INTO transactions (id, kiosk_id, open_for_kiosk, state, created_at, expires_at, "
                    "card_serial, resident_id) VALUES ('T1', 'K1', 'K1', 'authenticated', :t, :t, '0A', 'toride-0001')"
                ),
                {"t": "2026-01-01 00:00:00"},
            )
        command.upgrade(config, "head")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT card_applied_by FROM transactions")).all() == [("08217",)]
            assert "resident_id" not in {c["name"] for c in inspect(conn).get_columns("transactions")}
        command.downgrade(config, "0008_resident_cards")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT resident_id FROM transactions")).all() == [("toride-0001",)]
            assert not {"lgwan_orders", "outcome_reports"} & set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
