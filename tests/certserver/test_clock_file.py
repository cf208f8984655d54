"""The service clock's file in the data folder: what `serve` records and the commands read."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest

from certserver.cli import main
from certserver.clock import CLOCK_FILE, ServiceClock, load_clock, save_clock
from certserver.db.session import make_engine, make_session_factory, transaction
from certserver.services import audit
from konbini_common.japan import JST


def test_the_clock_file_holds_the_offset_for_the_commands_and_goes_with_the_host_clock(tmp_path: Path) -> None:
    save_clock(tmp_path, ServiceClock(dt.timedelta(days=-3)))
    assert stat.S_IMODE((tmp_path / CLOCK_FILE).stat().st_mode) == 0o600
    assert load_clock(tmp_path).offset == dt.timedelta(days=-3)
    save_clock(tmp_path, ServiceClock())  # serve without --pretend-time
    assert not (tmp_path / CLOCK_FILE).exists()
    assert not load_clock(tmp_path).pretending


def test_a_damaged_clock_file_is_one_line_for_the_operator(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CERTSERVER_DATABASE_URL", db_url)
    (tmp_path / CLOCK_FILE).write_text("{not json")
    assert main(["card", "revoke", "--data-dir", str(tmp_path), "--serial", "0A", "--reason", "stolen"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a service clock file" in err[0]


def test_the_last_recorded_time_is_the_newest_audit_entry(db_url: str) -> None:
    at = dt.datetime(2026, 11, 26, 1, 0, tzinfo=dt.UTC)
    engine = make_engine(db_url)
    try:
        factory = make_session_factory(engine)
        with transaction(factory) as session:
            assert audit.last_recorded_at(session) is None
            audit.record(session, at=at, action="start", outcome="ok")
            audit.record(session, at=at + dt.timedelta(seconds=1), action="start", outcome="ok")
        with transaction(factory) as session:
            assert audit.last_recorded_at(session) == at + dt.timedelta(seconds=1)
    finally:
        engine.dispose()


def test_a_pretended_clock_continues_from_a_later_recorded_time(caplog: pytest.LogCaptureFixture) -> None:
    pretend = dt.datetime(2026, 11, 26, 10, 0, tzinfo=JST)
    recorded = pretend + dt.timedelta(days=2)
    assert abs(ServiceClock.pretending_from(pretend, last_recorded=recorded)() - recorded) < dt.timedelta(seconds=5)
    assert "continues from" in caplog.text
    earlier = pretend - dt.timedelta(days=2)
    assert abs(ServiceClock.pretending_from(pretend, last_recorded=earlier)() - pretend) < dt.timedelta(seconds=5)
