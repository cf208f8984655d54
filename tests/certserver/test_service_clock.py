"""One clock for the service, its workers and the operator's commands: what `serve
--pretend-time` records, `card revoke` stamps; a restart with an earlier pretended time
continues from the last recorded time; audit entries never go backwards."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import api_support
import pytest
from api_support import KioskClient, Pki, populated_with_kiosks
from sqlalchemy import select
from sqlalchemy.orm import Session

from certserver.cli import main
from certserver.db.models.pki import CardCertificate
from certserver.db.models.transactions import AuditEntry, KioskTransaction
from certserver.db.session import make_engine, make_session_factory, transaction
from certserver.services import audit
from konbini_testkit.processkit import stop, wait_until_healthy

pki = api_support.pki  # fixture

CLOSE = dt.timedelta(minutes=2)  # a process start and a few requests, on a busy machine


def as_utc(moment: dt.datetime) -> dt.datetime:
    """SQLite gives back naive UTC datetimes, PostgreSQL aware ones."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _last_recorded_at(session: Session) -> dt.datetime | None:
    at = session.scalar(select(AuditEntry.at).order_by(AuditEntry.seq.desc()).limit(1))
    return None if at is None else as_utc(at)


def test_an_audit_entry_is_never_dated_before_the_one_it_follows(db_url: str) -> None:
    """Two requests read the clock in one order and commit in the other; or a command's
    clock lags the service's: the log's times still only move forward."""
    later = dt.datetime(2026, 11, 26, 1, 0, tzinfo=dt.UTC)
    engine = make_engine(db_url)
    try:
        factory = make_session_factory(engine)
        with transaction(factory) as session:
            audit.record(session, at=later, action="start", outcome="ok")
            audit.record(session, at=later - dt.timedelta(hours=5), action="start", outcome="ok")
            audit.record(session, at=later + dt.timedelta(seconds=1), action="start", outcome="ok")
        with transaction(factory) as session:
            times = [as_utc(at) for at in session.scalars(select(AuditEntry.at).order_by(AuditEntry.seq))]
            assert audit.verify_chain(session).ok
    finally:
        engine.dispose()
    assert times == [later, later, later + dt.timedelta(seconds=1)]


# -- the real command, restarted -------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _serving(data_dir: Path, db_url: str, pretend: dt.datetime, workers: int, log: Path) -> Iterator[str]:
    """`certserver serve --pretend-time` as its own process until the block ends; its URL."""
    port = _free_port()
    env = {**os.environ, "CERTSERVER_DATABASE_URL": db_url}
    env.pop("CERTSERVER_PRETEND_TIME", None)
    with log.open("ab") as err:
        server = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from certserver.cli import main; sys.exit(main())",
                "serve",
                "--data-dir",
                str(data_dir),
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--render-processes",
                "0",
                "--pretend-time",
                pretend.isoformat(),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base, server, poll=0.2, describe=log.read_text)
        yield base
    finally:
        stop(server)


def _data_dir(tmp_path: Path, pki: Pki) -> Path:
    """A data folder of its own (the clock file is per data folder), with the shared test CAs."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    (data_dir / "ca").symlink_to(pki.data_dir / "ca", target_is_directory=True)
    return data_dir


@pytest.mark.slow
def test_a_card_revoked_from_the_shell_carries_the_pretended_time(
    db_url: str, pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service pretends a date ten days before the host's: a card revoked from the shell
    meanwhile carries the service's date, not the host's (which the service would see as a
    revocation still in its future)."""
    data_dir = _data_dir(tmp_path, pki)
    populated_with_kiosks(db_url, pki, [])
    monkeypatch.setenv("CERTSERVER_DATABASE_URL", db_url)
    pretended = (dt.datetime.now(dt.UTC) - dt.timedelta(days=10)).replace(microsecond=0)
    card = pki.cards["toride-000"]
    with _serving(data_dir, db_url, pretended, 1, tmp_path / "serve.log"):
        assert main(["card", "revoke", "--data-dir", str(data_dir), "--serial", card.serial, "--reason", "stolen"]) == 0
    engine = make_engine(db_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            revoked_at = session.scalar(select(CardCertificate.revoked_at).where(CardCertificate.serial == card.serial))
    finally:
        engine.dispose()
    assert revoked_at is not None and pretended <= as_utc(revoked_at) < pretended + CLOSE


@pytest.mark.slow
def test_a_restart_with_an_earlier_pretended_time_continues_from_the_last_recorded_time(
    db_url: str, pki: Pki, tmp_path: Path
) -> None:
    """Restarted with an earlier --pretend-time, the service (both of its workers) continues
    from its audit log's newest entry, and the log never goes backwards."""
    data_dir = _data_dir(tmp_path, pki)
    (credential,) = populated_with_kiosks(db_url, pki, ["K1"])
    log = tmp_path / "serve.log"
    first = (dt.datetime.now(dt.UTC) - dt.timedelta(days=10)).replace(microsecond=0)
    with _serving(data_dir, db_url, first, 1, log) as base, KioskClient(base, credential) as kiosk:
        assert kiosk.start().status_code == 201
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    try:
        with transaction(factory) as session:
            before_restart = _last_recorded_at(session)
        assert before_restart is not None and first <= before_restart < first + CLOSE

        with _serving(data_dir, db_url, first - dt.timedelta(days=1), 2, log) as base:
            for _ in range(4):  # fresh connections, so that both workers answer
                with KioskClient(base, credential) as kiosk:
                    assert kiosk.start().status_code == 201

        with transaction(factory) as session:
            times = [as_utc(at) for at in session.scalars(select(AuditEntry.at).order_by(AuditEntry.seq))]
            started = [
                as_utc(at)
                for at in session.scalars(select(KioskTransaction.created_at).order_by(KioskTransaction.created_at))
            ]
    finally:
        engine.dispose()
    assert times == sorted(times)
    assert len(started) == 5 and all(before_restart <= at < before_restart + CLOSE for at in started[1:])
    assert "the clock continues from" in log.read_text()


# -- moving a running service's clock ---------------------------------------------------------


def _expires_at(base: str, credential) -> dt.datetime:  # type: ignore[no-untyped-def]
    with KioskClient(base, credential) as kiosk:
        started = kiosk.start()
    assert started.status_code == 201
    return dt.datetime.fromisoformat(started.json()["expires_at"])


@pytest.mark.slow
def test_clock_forward_moves_every_worker_of_a_running_service(
    db_url: str, pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trainer jumps a day ahead without a restart: both workers' next transactions are
    dated a day later, and the step is in the audit log."""
    data_dir = _data_dir(tmp_path, pki)
    (credential,) = populated_with_kiosks(db_url, pki, ["K1"])
    monkeypatch.setenv("CERTSERVER_DATABASE_URL", db_url)
    pretended = (dt.datetime.now(dt.UTC) - dt.timedelta(days=10)).replace(microsecond=0)
    with _serving(data_dir, db_url, pretended, 2, tmp_path / "serve.log") as base:
        before = _expires_at(base, credential)
        assert main(["clock", "forward", "--data-dir", str(data_dir), "--by", "1d"]) == 0
        after = [_expires_at(base, credential) for _ in range(4)]  # fresh connections: both workers
    assert all(dt.timedelta(days=1) <= moment - before < dt.timedelta(days=1) + CLOSE for moment in after)
    engine = make_engine(db_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            steps = list(session.scalars(select(AuditEntry.detail).where(AuditEntry.action == "clock_forward")))
    finally:
        engine.dispose()
    assert steps == ['{"by_seconds":86400.0}']


def test_clock_refuses_a_missing_folder_a_service_on_the_hosts_time_and_a_bad_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["clock", "show", "--data-dir", str(tmp_path / "nowhere")]) == 2
    assert "no data folder at" in capsys.readouterr().err
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    assert main(["clock", "forward", "--data-dir", str(data_dir), "--by", "2h"]) == 2
    assert "only a service started with `serve --pretend-time`" in capsys.readouterr().err
    for bad in ("-1h", "0m", "soon", "2x"):
        with pytest.raises(SystemExit) as exited:
            main(["clock", "forward", "--data-dir", str(data_dir), f"--by={bad}"])
        assert exited.value.code == 2
        assert "step" in capsys.readouterr().err
