"""The municipalities' configuration is cached per process, and any change to it, however
it is written, is seen by the next request (certserver.db.repositories.registry_config).
On SQLite and PostgreSQL, with a second engine standing in for another worker or an
operator's SQL session."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from registry_support import build_demo_database
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session

from certserver.db.session import make_engine, make_session_factory
from certserver.demo.world import TORIDE
from certserver.documents.content import CertificateKind
from certserver.services.ordering import (
    Menu,
    MunicipalityRole,
    OrderRequest,
    menu_for,
    prepare_order,
)

KENICHI = "toride-0001"
FRIDAY_NOON = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)  # 12:00 JST
CONFIGURATION_TABLES = ("municipalities", "certificate_settings", "fees", "closures")


@pytest.fixture
def demo_url(db_url: str) -> str:
    build_demo_database(db_url)
    return db_url


@pytest.fixture
def service_engine(demo_url: str) -> Iterator[Engine]:
    """The engine of the process under test."""
    engine = make_engine(demo_url)
    yield engine
    engine.dispose()


@pytest.fixture
def other_writer(demo_url: str) -> Iterator[Engine]:
    """Another process's connection: the CLI, another worker, an operator's psql."""
    engine = make_engine(demo_url)
    yield engine
    engine.dispose()


def menu(engine: Engine) -> Menu:
    with make_session_factory(engine)() as session, session.begin():
        return menu_for(session, KENICHI, FRIDAY_NOON)


def juminhyo_fee(engine: Engine) -> int:
    home = menu(engine).municipalities[0]
    return next(o.fee_yen for o in home.offers if o.kind == CertificateKind.JUMINHYO)


def write(engine: Engine, sql: str, **params: object) -> None:
    with engine.begin() as connection:
        connection.execute(text(sql), params)


def token(engine: Engine) -> str:
    with engine.connect() as connection:
        return str(connection.execute(text("SELECT token FROM registry_revision WHERE id = 1")).scalar_one())


def test_a_fee_changed_in_sql_by_another_connection_is_charged_at_once(
    service_engine: Engine, other_writer: Engine
) -> None:
    before = juminhyo_fee(service_engine)
    write(
        other_writer,
        "UPDATE fees SET fee_yen = fee_yen + 50 WHERE municipality_code = :code AND kind = 'juminhyo'",
        code=TORIDE,
    )
    assert juminhyo_fee(service_engine) == before + 50


def test_the_stop_switch_thrown_elsewhere_closes_the_next_menu(service_engine: Engine, other_writer: Engine) -> None:
    assert menu(service_engine).municipalities[0].open
    write(
        other_writer,
        "UPDATE municipalities SET stopped = :yes, stop_reason = 'test' WHERE code = :code",
        yes=True,
        code=TORIDE,
    )
    home = menu(service_engine).municipalities[0]
    assert (home.open, home.closed_reason) == (False, "municipality_stopped")


def test_a_maintenance_day_added_elsewhere_closes_the_next_menu(service_engine: Engine, other_writer: Engine) -> None:
    assert menu(service_engine).municipalities[0].open
    write(
        other_writer,
        "INSERT INTO closures (municipality_code, closed_on, reason) VALUES (:code, :day, 'test')",
        code=TORIDE,
        day=FRIDAY_NOON.date(),
    )
    assert menu(service_engine).municipalities[0].closed_reason == "maintenance_day"


def test_a_certificate_withdrawn_elsewhere_is_refused_at_order(service_engine: Engine, other_writer: Engine) -> None:
    order = OrderRequest(TORIDE, MunicipalityRole.JUSHOCHI, CertificateKind.JUMINHYO)
    with make_session_factory(service_engine)() as session, session.begin():
        prepare_order(session, KENICHI, order, FRIDAY_NOON)
    write(
        other_writer,
        "DELETE FROM certificate_settings WHERE municipality_code = :code AND kind = 'juminhyo'",
        code=TORIDE,
    )
    kinds = {o.kind for o in menu(service_engine).municipalities[0].offers}
    assert CertificateKind.JUMINHYO not in kinds


def test_a_change_rolled_back_is_never_served(service_engine: Engine) -> None:
    before = juminhyo_fee(service_engine)
    session: Session
    with make_session_factory(service_engine)() as session:
        session.execute(text("UPDATE fees SET fee_yen = 9999 WHERE kind = 'juminhyo'"))
        seen = menu_for(session, KENICHI, FRIDAY_NOON)  # caches what this transaction sees
        assert next(o.fee_yen for o in seen.municipalities[0].offers if o.kind == CertificateKind.JUMINHYO) == 9999
        session.rollback()
    assert juminhyo_fee(service_engine) == before


@pytest.mark.parametrize("table", CONFIGURATION_TABLES)
def test_every_kind_of_write_to_the_configuration_gives_a_new_token(other_writer: Engine, table: str) -> None:
    code = "99999"
    statements = {
        "municipalities": (
            "INSERT INTO municipalities (code, name, name_en, prefecture, mayor_title, mayor_name, "
            "participating, stopped, allows_my_number_on_juminhyo) VALUES (:code, 'x', 'x', 'x', "
            "'x', 'x', :no, :no, :no)",
            "UPDATE municipalities SET name = 'y' WHERE code = :code",
            "DELETE FROM municipalities WHERE code = :code",
        ),
        "certificate_settings": (
            "INSERT INTO certificate_settings (municipality_code, kind, offered, opens_at, "
            "closes_at, weekdays_only, max_copies) VALUES (:code, 'juminhyo', :no, '06:30:00', "
            "'23:00:00', :no, 1)",
            "UPDATE certificate_settings SET max_copies = 2 WHERE municipality_code = :code",
            "DELETE FROM certificate_settings WHERE municipality_code = :code",
        ),
        "fees": (
            "INSERT INTO fees (municipality_code, kind, fee_yen, valid_from, label) "
            "VALUES (:code, 'juminhyo', 1, '2020-01-01', '')",
            "UPDATE fees SET fee_yen = 2 WHERE municipality_code = :code",
            "DELETE FROM fees WHERE municipality_code = :code",
        ),
        "closures": (
            "INSERT INTO closures (municipality_code, closed_on, reason) VALUES (:code, '2030-01-01', 'x')",
            "UPDATE closures SET reason = 'y' WHERE municipality_code = :code",
            "DELETE FROM closures WHERE municipality_code = :code",
        ),
    }[table]
    if table != "municipalities":
        write(other_writer, statements_for_parent(), code=code, no=False)
    for statement in statements:
        before = token(other_writer)
        write(other_writer, statement, code=code, no=False)
        assert token(other_writer) != before, statement


def statements_for_parent() -> str:
    return (
        "INSERT INTO municipalities (code, name, name_en, prefecture, mayor_title, mayor_name, participating, "
        "stopped, allows_my_number_on_juminhyo) VALUES (:code, 'x', 'x', 'x', 'x', 'x', :no, :no, :no)"
    )


def test_an_unchanged_configuration_is_read_once_per_process(service_engine: Engine) -> None:
    menu(service_engine)  # fills the cache
    statements: list[str] = []

    @event.listens_for(service_engine, "before_cursor_execute")
    def _seen(_conn, _cursor, statement, _params, _context, _many):  # type: ignore[no-untyped-def]
        statements.append(statement)

    menu(service_engine)
    read_tables = " ".join(statements)
    assert "registry_revision" in read_tables
    for table in CONFIGURATION_TABLES:
        assert f"FROM {table}" not in read_tables, table
    assert "FROM residents" in read_tables  # a resident's own data is read every time


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # a file copy: a second database, same token
def test_the_cache_is_per_database(service_engine: Engine, tmp_path: Path, demo_url: str) -> None:
    copy = tmp_path / "copy.db"
    copy.write_bytes(Path(demo_url.removeprefix("sqlite:///")).read_bytes())
    before = juminhyo_fee(service_engine)
    second = make_engine(f"sqlite:///{copy}")
    try:
        juminhyo_fee(second)
        write(second, "UPDATE fees SET fee_yen = 1 WHERE kind = 'juminhyo'")
        assert juminhyo_fee(second) == 1
        assert juminhyo_fee(service_engine) == before
    finally:
        second.dispose()
