"""The hand-written registry migration creates exactly the schema the models describe, on
SQLite and PostgreSQL, and can be undone."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from certserver.db.models import Base
from certserver.db.session import alembic_config, make_engine
from konbini_testkit.postgres import scratch_database

REGISTRY_TABLES = frozenset(
    {
        "municipalities",
        "certificate_settings",
        "fees",
        "closures",
        "households",
        "residents",
        "seal_registrations",
        "tax_records",
        "koseki",
        "koseki_members",
        "fuhyo_entries",
        "honseki_registrations",
    }
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no revision applied), once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    base = os.environ.get("CERTSERVER_TEST_POSTGRES_URL")
    if not base:
        if os.environ.get("KONBINI_REQUIRE_POSTGRES") == "1":
            pytest.fail("CERTSERVER_TEST_POSTGRES_URL is not set")
        pytest.skip("CERTSERVER_TEST_POSTGRES_URL is not set")
    with scratch_database(base, "m_") as url:
        yield url


def _registry_diff(url: str) -> list[object]:
    def only_registry(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
        table = obj if type_ == "table" else getattr(obj, "table", None)
        table_name = name if type_ == "table" else getattr(table, "name", None)
        return table_name in REGISTRY_TABLES

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"include_object": only_registry, "compare_type": True, "compare_server_default": True}
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_registry_migrations_match_the_models(empty_db_url: str) -> None:
    """0001 creates the registry; later revisions (0007: foreign residents' 通称 and 区分) add
    to it: at head the registry tables are exactly what the models describe."""
    command.upgrade(alembic_config(empty_db_url), "head")
    assert _registry_diff(empty_db_url) == []


def test_foreign_resident_items_migration_adds_and_removes_its_columns(empty_db_url: str) -> None:
    config = alembic_config(empty_db_url)
    command.upgrade(config, "0007_foreign_resident_items")
    engine = make_engine(empty_db_url)
    try:
        columns = {column["name"] for column in inspect(engine).get_columns("residents")}
        assert {"tsusho", "foreign_resident_category"} <= columns
        command.downgrade(config, "0006_idempotency_transaction")
        columns = {column["name"] for column in inspect(engine).get_columns("residents")}
        assert not {"tsusho", "foreign_resident_category"} & columns
    finally:
        engine.dispose()


def test_registry_migration_names_constraints_by_the_convention(empty_db_url: str) -> None:
    command.upgrade(alembic_config(empty_db_url), "0001_registry")
    engine = make_engine(empty_db_url)
    try:
        inspector = inspect(engine)
        assert inspector.get_pk_constraint("residents")["name"] == "pk_residents"
        fk_names = {fk["name"] for fk in inspector.get_foreign_keys("residents")}
        assert fk_names == {"fk_residents_household_id_households", "fk_residents_municipality_code_municipalities"}
        unique_names = {uq["name"] for uq in inspector.get_unique_constraints("residents")}
        assert {"uq_residents_my_number", "uq_residents_juminhyo_code"} <= unique_names
        check_names = {ck["name"] for ck in inspector.get_check_constraints("residents")}
        assert "ck_residents_status_known" in check_names
    finally:
        engine.dispose()


def test_registry_migration_downgrades_to_an_empty_schema(empty_db_url: str) -> None:
    config = alembic_config(empty_db_url)
    command.upgrade(config, "0001_registry")
    command.downgrade(config, "base")
    engine = make_engine(empty_db_url)
    try:
        assert REGISTRY_TABLES.isdisjoint(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_head_includes_the_registry_unchanged(db_url: str) -> None:
    assert _registry_diff(db_url) == []
