"""Engines, sessions and migrations.

One engine per process, one session and transaction per request (owned by the API's
dependency) or per CLI command. SQLite gets WAL, a busy timeout and foreign keys, so several
worker processes on one file behave; PostgreSQL needs nothing special.

SQLite also gets `secure_delete` and a checkpoint after every commit that erased personal
data (`checkpoint_after_commit`): the rows a transaction ends with (erased PDFs, scrubbed
answers) must not survive as freed pages in the database file or as old frames in the WAL.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, CursorResult, Engine, Result, create_engine, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from certserver.data_folder import PRIVATE_FILE_MODE, make_private_folder

logger = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
BUSY_TIMEOUT_MS = 30_000
CHECKPOINT_BUSY_TIMEOUT_MS = 1_000
_CHECKPOINT_DUE = "checkpoint_after_commit"  # connection record info: this connection erased data


def make_engine(url: str, **kwargs: object) -> Engine:
    """An engine for `url`; for SQLite the parent folder is created."""
    if url.startswith("sqlite"):
        if ":memory:" not in url and url.startswith("sqlite:///"):
            make_private_folder(Path(url.removeprefix("sqlite:///")).parent)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            # Freed pages are zeroed, so an erased PDF does not stay readable in the free
            # pages of the file (or in the WAL frames that carry them there).
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        # Registered here, before any other checkin listener: the checkpoint must run while
        # the service's writer lock (queue_writers_on_a_file_lock) is still held.
        @event.listens_for(engine, "checkin")
        def _checkpoint_if_erased(dbapi_connection: DBAPIConnection | None, record: ConnectionPoolEntry) -> None:
            if dbapi_connection is None or not record.info.pop(_CHECKPOINT_DUE, False):
                return
            try:
                truncate_wal(dbapi_connection)
            except sqlite3.Error as exc:  # the erasure is committed; the next checkpoint catches up
                logger.warning("the WAL checkpoint after an erasure failed: %s", exc.__class__.__name__)

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def truncate_wal(dbapi_connection: Any) -> bool:
    """Copy the SQLite WAL into the database file and cut the WAL to zero bytes, so the old
    page images it holds (erased PDFs among them) are gone. Returns False when a reader in
    another process kept it from finishing (the next checkpoint catches up)."""
    cursor = dbapi_connection.cursor()
    try:
        # A TRUNCATE checkpoint waits in the busy handler for readers in other processes (a
        # CLI command): wait briefly, not the 30 s a writer would, since the service's
        # writer lock is held meanwhile.
        cursor.execute(f"PRAGMA busy_timeout={CHECKPOINT_BUSY_TIMEOUT_MS}")
        busy, _frames, _copied = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.close()
    if busy:
        logger.warning("the WAL checkpoint after an erasure was blocked by a reader; the next one retries")
    return not busy


def checkpoint_after_commit(session: Session) -> None:
    """Ask for a WAL checkpoint (TRUNCATE) once this session's transaction has ended: it
    erased personal data whose old page images must not stay in the WAL. Nothing on
    PostgreSQL (its WAL and vacuum are the operator's, see README)."""
    if session.get_bind().dialect.name != "sqlite":
        return
    session.connection().connection.info[_CHECKPOINT_DUE] = True


def quick_check(connection: Connection) -> str | None:
    """None when SQLite's `PRAGMA quick_check` finds the database sound, else its first finding."""
    findings = [str(row[0]) for row in connection.exec_driver_sql("PRAGMA quick_check").fetchall()]
    return None if findings == ["ok"] else (findings[0] if findings else "no answer")


def queue_writers_on_a_file_lock(engine: Engine, lock_path: Path) -> None:
    """Make this engine's processes take turns on the SQLite file through an OS lock.

    For an engine whose pool holds one connection per process, used only with every
    transaction BEGIN IMMEDIATE (the service's engine): the lock is taken when a thread
    checks the connection out and dropped when it comes back. Without it, a worker process
    that finds the database locked waits in SQLite's busy handler, which sleeps in growing
    steps (1, 2, 5, 10 ... 100 ms) however soon the other process commits: two workers on
    one file ran slower than one. The kernel wakes a process blocked on flock(2) the moment
    the holder lets go. SQLite's own locking stays the guard; other programs on the file
    (the CLI) do not take this lock and still queue on busy_timeout.
    """
    holder: dict[int, BinaryIO] = {}  # pid -> this process's lock file (not shared over fork)

    def lock_file() -> BinaryIO:
        pid = os.getpid()
        if pid not in holder:
            holder.clear()
            fd = os.open(lock_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE)
            holder[pid] = os.fdopen(fd, "ab")
        return holder[pid]

    @event.listens_for(engine, "checkout")
    def _take_turn(_dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        fcntl.flock(lock_file(), fcntl.LOCK_EX)

    @event.listens_for(engine, "checkin")
    def _end_turn(_dbapi_connection: Any, _record: Any) -> None:
        fcntl.flock(lock_file(), fcntl.LOCK_UN)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on any error."""
    with factory() as session, session.begin():
        yield session


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_to_head(url: str) -> None:
    """Create or migrate the schema to the newest revision."""
    command.upgrade(alembic_config(url), "head")


def rows_matched(result: Result[Any]) -> int:
    """How many rows an executed UPDATE or DELETE matched. `Session.execute` is typed as
    returning a Result, but a DML statement gives a CursorResult, which alone counts rows.
    Raises TypeError for a result that did not come from such a statement."""
    if not isinstance(result, CursorResult):
        raise TypeError(f"a {type(result).__name__} does not count matched rows")
    return result.rowcount
