"""The hand-written PKI migrations (0002_pki, 0008_resident_cards) create exactly the card
tables the models describe (SQLite and PostgreSQL), with constraint names from the
convention, carry existing cards over, and can be undone."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from pki_support import Db, add_resident, database_at, db, insert_card_row  # noqa: F401 - fixtures
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from certserver.db.models import Base
from certserver.db.models.pki import CardCertificate
from certserver.db.models.registry import ResidentCard
from certserver.db.session import alembic_config, make_engine, transaction
from konbini_common.japan import JST

PKI_TABLES = frozenset({"card_certificates", "trusted_cas", "resident_cards"})


def _pki_diff(url: str) -> list[object]:
    def only_pki(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
        table = obj if type_ == "table" else getattr(obj, "table", None)
        table_name = name if type_ == "table" else getattr(table, "name", None)
        return table_name in PKI_TABLES

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"include_object": only_pki, "compare_type": True, "compare_server_default": True}
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_pki_migration_matches_the_models(db_url: str) -> None:
    assert _pki_diff(db_url) == []


def test_pki_constraints_are_named_by_the_convention(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        inspector = inspect(engine)
        assert inspector.get_pk_constraint("card_certificates")["name"] == "pk_card_certificates"
        assert {fk["name"] for fk in inspector.get_foreign_keys("card_certificates")} == {
            "fk_card_certificates_trusted_ca_id_trusted_cas",
        }
        assert {uq["name"] for uq in inspector.get_unique_constraints("card_certificates")} == {
            "uq_card_certificates_serial"
        }
        assert {ck["name"] for ck in inspector.get_check_constraints("card_certificates")} >= {
            "ck_card_certificates_purpose_known",
            "ck_card_certificates_status_known",
            "ck_card_certificates_revoked_has_time",
            "ck_card_certificates_enrolled_has_ca",
        }
    finally:
        engine.dispose()


def test_pki_migration_downgrades_to_the_registry_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    config = alembic_config(url)
    command.upgrade(config, "0002_pki")
    command.downgrade(config, "0001_registry")
    engine = make_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert PKI_TABLES.isdisjoint(tables) and "residents" in tables


def test_the_upgrade_to_resident_cards_carries_each_card_to_its_municipality(tmp_path: Path) -> None:
    """Cards issued before 0008 keep working: the JPKI row gets its holder's municipality and
    the municipality's record gets the holder; the downgrade puts the holder back."""
    config, engine = database_at(tmp_path, "0007_foreign_resident_items")
    try:
        insert_card_row(engine, "resident_id", "toride-0001")
        command.upgrade(config, "0008_resident_cards")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT serial, municipality_code FROM card_certificates")).all() == [
                ("0A", "08217")
            ]
            assert conn.execute(
                text("SELECT serial, card_id, resident_id, municipality_code FROM resident_cards")
            ).all() == [("0A", "c" * 32, "toride-0001", "08217")]
        command.downgrade(config, "0007_foreign_resident_items")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT serial, resident_id FROM card_certificates")).all() == [
                ("0A", "toride-0001")
            ]
            assert "resident_cards" not in inspect(conn).get_table_names()
    finally:
        engine.dispose()


def test_the_municipalitys_card_record_must_name_one_of_its_residents(db: Db) -> None:
    with transaction(db.factory) as session:
        add_resident(session)
        session.add(_certificate())
    with pytest.raises(IntegrityError), transaction(db.factory) as session:
        session.add(ResidentCard(serial="0A", card_id="c" * 32, resident_id="nobody", municipality_code="08217"))


def _certificate(**overrides: object) -> CardCertificate:
    now = dt.datetime.now(dt.UTC)
    values: dict[str, object] = {
        "serial": "0A",
        "card_id": "c" * 32,
        "municipality_code": "08217",
        "purpose": "auth",
        "subject_cn": "TESTONLY",
        "issued_at": now,
        "not_before": now,
        "not_after": now,
        "status": "active",
        "enrolled_real_card": False,
        "certificate_der": b"\x30\x00",
    }
    values.update(overrides)
    return CardCertificate(**values)


@pytest.mark.parametrize(
    "overrides",
    [
        {"purpose": "document"},
        {"status": "revoked"},  # revoked without a time
        {"revoked_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)},  # a time without the status
        {"enrolled_real_card": True},  # an enrolled card without its trusted CA
    ],
)
def test_the_database_refuses_inconsistent_certificate_rows(db: Db, overrides: dict[str, object]) -> None:
    with transaction(db.factory) as session:
        add_resident(session)
    with pytest.raises(IntegrityError), transaction(db.factory) as session:
        session.add(_certificate(**overrides))


def test_serials_are_unique(db: Db) -> None:
    with transaction(db.factory) as session:
        add_resident(session)
        session.add(_certificate())
    with pytest.raises(IntegrityError), transaction(db.factory) as session:
        session.add(_certificate(card_id="d" * 32))


def test_times_come_back_as_aware_utc(db: Db) -> None:
    moment = dt.datetime(2026, 11, 26, 12, 0, tzinfo=JST)
    with transaction(db.factory) as session:
        add_resident(session)
        session.add(_certificate(not_after=moment))
    with db.factory() as session:
        stored = session.query(CardCertificate).one().not_after
    assert stored == moment and stored.tzinfo is not None and stored.utcoffset() == dt.timedelta(0)
