"""Fixtures shared by every test package.

- `vpcd_slot` / `vpcd_slots`: readers of the running pcscd's vpcd driver, each locked for the
  duration of a test so that concurrent test runs never put two cards in one reader.
- `db_url`: a fresh, migrated database per test, on SQLite and (when
  CERTSERVER_TEST_POSTGRES_URL is set) on PostgreSQL, cloned from a template migrated once.
Where the environment demands them (KONBINI_REQUIRE_PCSC=1, KONBINI_REQUIRE_POSTGRES=1, as
the test command sets when it started them), a missing service fails instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from konbini_testkit.postgres import drop_database, scratch_database
from konbini_testkit.processkit import vpcd_lock
from konbini_testkit.vpcd import VPCD_PORTS, VpcdSlot

if TYPE_CHECKING:
    pass


def _pcscd_ready() -> bool:
    if not Path("/run/pcscd/pcscd.comm").exists():
        return False
    out = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=False).stdout
    return all(f":{port} " in out for port in VPCD_PORTS)


def _require_or_skip(flag: str, why: str) -> None:
    if os.environ.get(flag) == "1":
        pytest.fail(f"{why} (required because {flag}=1)")
    pytest.skip(why)


@pytest.fixture(scope="session")
def pcscd() -> None:
    if not _pcscd_ready():
        _require_or_skip("KONBINI_REQUIRE_PCSC", "pcscd with the vpcd driver is not running")


def _lock_slots(count: int, timeout: float = 120.0) -> tuple[list[VpcdSlot], list[int]]:
    deadline = time.monotonic() + timeout
    while True:
        held: list[tuple[VpcdSlot, int]] = []
        for index, port in enumerate(VPCD_PORTS):
            fd = vpcd_lock(port, wait=False)
            if fd is None:
                continue
            held.append((VpcdSlot(f"Virtual PCD 00 {index:02d}", port), fd))
            if len(held) == count:
                return [s for s, _ in held], [fd for _, fd in held]
        for _, fd in held:
            os.close(fd)
        if time.monotonic() > deadline:
            pytest.fail("no free vpcd reader slot")
        time.sleep(0.1)


@pytest.fixture
def vpcd_slot(pcscd: None) -> Iterator[VpcdSlot]:
    slots, fds = _lock_slots(1)
    try:
        yield slots[0]
    finally:
        for fd in fds:
            os.close(fd)


@pytest.fixture
def vpcd_slots(pcscd: None) -> Iterator[list[VpcdSlot]]:
    # All slots, taken one by one in port order and waiting on each: a test holding one
    # slot never waits for another, so this cannot deadlock, and a polling attempt for
    # every slot at once could starve behind a stream of single-slot tests.
    fds: list[int] = []
    try:
        for port in VPCD_PORTS:
            fd = vpcd_lock(port, wait=True)
            assert fd is not None  # a waiting lock always ends held
            fds.append(fd)
        yield [VpcdSlot(f"Virtual PCD 00 {i:02d}", port) for i, port in enumerate(VPCD_PORTS)]
    finally:
        for fd in fds:
            os.close(fd)


# -- databases ----------------------------------------------------------------------------


def _postgres_admin_url() -> str | None:
    return os.environ.get("CERTSERVER_TEST_POSTGRES_URL")


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from certserver.db.session import upgrade_to_head

    path = tmp_path_factory.mktemp("db-template") / "template.db"
    upgrade_to_head(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def _postgres_template() -> Iterator[str]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from certserver.db.session import upgrade_to_head

    base = _postgres_admin_url()
    if not base:
        _require_or_skip("KONBINI_REQUIRE_POSTGRES", "CERTSERVER_TEST_POSTGRES_URL is not set")
    assert base is not None
    name = f"tmpl_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    upgrade_to_head(url)
    yield name
    drop_database(admin, name)
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database at head, once per backend."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("_sqlite_template")
        path = tmp_path / "certserver.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    template_name: str = request.getfixturevalue("_postgres_template")
    base = _postgres_admin_url()
    assert base is not None
    with scratch_database(base, "t_", template=template_name) as url:
        yield url


def pytest_addoption(parser: pytest.Parser) -> None:
    """The LGWAN contract suite's target (tests/lgwan_contract/conftest.py): by default the
    in-tree certificate server; these point it at another one."""
    group = parser.getgroup("lgwan contract")
    group.addoption("--municipality-url", default=None, help="a municipality server to hold to docs/lgwan.md")
    group.addoption("--lgwan-dir", default=None, help="the LGWAN test PKI folder (centre.pem/key, municipality-ca.pem)")
    group.addoption("--contract-card", default=None, help="SERIAL:MUNICIPALITY of a card that may order a 住民票")
    group.addoption("--contract-at", default=None, help="an ISO moment the municipality is open")
