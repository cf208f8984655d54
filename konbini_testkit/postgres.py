"""Scratch PostgreSQL databases for tests: created on the server a base URL names, handed
out as a URL, dropped afterwards (even when a backend still holds it)."""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError


@contextmanager
def scratch_database(base_url: str, prefix: str, *, template: str | None = None) -> Iterator[str]:
    """A new database (a copy of `template` when given) named `prefix` + random hex on the
    server of `base_url`; yields its URL and drops it when the block ends."""
    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            copy = f' TEMPLATE "{template}"' if template else ""
            conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
        try:
            yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
        finally:
            drop_database(admin, name)
    finally:
        admin.dispose()


def drop_database(admin: Engine, name: str) -> None:
    """DROP DATABASE ... WITH (FORCE), retried: FORCE cannot end a backend of another role
    (an autovacuum worker that has just started on the new database, say), which raises
    InsufficientPrivilege; after 5 s it warns and leaves the database."""
    for attempt in range(20):
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except DBAPIError:
            if attempt == 19:
                warnings.warn(f"test database {name} could not be dropped", stacklevel=1)
                return
            time.sleep(0.25)
