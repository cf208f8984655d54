"""Several service processes on one SQLite file take turns on an OS file lock (flock), so
a waiting worker enters the moment the other commits instead of sleeping in SQLite's busy
handler. Two engines in one process stand in for two processes: each opens the lock file
itself, and flock(2) locks belong to the open file, not to the process."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import text

from certserver.app import build_engine
from certserver.config import Settings
from certserver.db.session import upgrade_to_head


def _service_engines(tmp_path: Path, count: int):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'certserver.db'}"
    upgrade_to_head(url)
    return [build_engine(Settings(data_dir=tmp_path, database_url=url)) for _ in range(count)]


def test_a_second_service_process_waits_for_the_first_to_commit_then_sees_its_write(tmp_path: Path) -> None:
    first, second = _service_engines(tmp_path, 2)
    entered = threading.Event()
    seen: list[int] = []

    def second_worker() -> None:
        with second.connect() as connection:  # waits here, before any SQL, while the first holds its turn
            entered.set()
            seen.append(connection.execute(text("SELECT last_seq FROM audit_head")).scalar_one())

    try:
        with first.connect() as connection:
            connection.execute(text("UPDATE audit_head SET last_seq = 41"))
            waiter = threading.Thread(target=second_worker)
            waiter.start()
            assert not entered.wait(0.5), "the second process got in while the first held its turn"
            connection.execute(text("UPDATE audit_head SET last_seq = 42"))
            connection.commit()
        waiter.join(timeout=10)
        assert entered.is_set()
        assert seen == [42]
    finally:
        first.dispose()
        second.dispose()


def test_the_lock_file_sits_beside_the_database(tmp_path: Path) -> None:
    (engine,) = _service_engines(tmp_path, 1)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        assert (tmp_path / "certserver.db.writer-lock").exists()
    finally:
        engine.dispose()
