"""A demo registry for the rules tests, built once per module and backend.

Import `demo_database` and `demo_session` into a test module; tests then ask for
`session`. Each test gets a session whose changes never outlive it: on PostgreSQL inside a transaction
(savepoints for the test's own rollbacks) that is rolled back afterwards; on SQLite, whose
driver handles savepoints poorly, on a fresh copy of the module's database file (cheap).
Building the demo once instead of per test keeps these modules fast on both backends.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from certserver.db.session import make_engine, make_session_factory
from certserver.demo.world import build_demo_registry

BUILT_ON = date(2026, 11, 26)  # a Thursday; the demo's relative dates count from it


def build_demo_database(url: str) -> None:
    """The demo registry built on BUILT_ON, committed into the (migrated) database at `url`."""
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            build_demo_registry(session, BUILT_ON)
            session.commit()
    finally:
        engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def demo_database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a migrated database holding the demo registry built on BUILT_ON."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("_sqlite_template")
        path = tmp_path_factory.mktemp("demo-registry") / "demo.db"
        shutil.copyfile(template, path)
        build_demo_database(f"sqlite:///{path}")
        yield f"sqlite:///{path}"
        return
    template_name: str = request.getfixturevalue("_postgres_template")
    base = os.environ["CERTSERVER_TEST_POSTGRES_URL"]
    name = f"r_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        build_demo_database(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(name="session")
def demo_session(demo_database: str, tmp_path: Path) -> Iterator[Session]:
    """A session on the demo registry; whatever the test changes is thrown away."""
    if demo_database.startswith("sqlite"):
        copy = tmp_path / "demo.db"
        shutil.copyfile(demo_database.removeprefix("sqlite:///"), copy)
        engine = make_engine(f"sqlite:///{copy}")
        try:
            with make_session_factory(engine)() as session:
                yield session
        finally:
            engine.dispose()
        return
    engine = make_engine(demo_database)
    connection = engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()
        engine.dispose()
