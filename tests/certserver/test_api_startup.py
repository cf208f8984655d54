"""The service refuses to start when its configuration does not fit its deployment
(service.md §7, Takamatsu 2024), and several workers on one database behave as one."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import api_support
import pytest
from api_support import KioskClient, Pki, make_settings, populated_with_kiosks

from certserver import app as app_module
from certserver.app import DeploymentCheckError, create_app
from certserver.cli import main
from certserver.clock import ServiceClock
from certserver.config import Settings
from certserver.db.session import make_engine, upgrade_to_head
from konbini_common.japan import JST
from konbini_testkit.processkit import wait_until_healthy

pki = api_support.pki  # fixture


def test_a_fitting_configuration_starts(db_url: str, pki: Pki) -> None:
    app = create_app(make_settings(pki, db_url, workers=2))
    app.state.engine.dispose()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"])
def test_an_in_memory_database_is_refused(pki: Pki, url: str) -> None:
    with pytest.raises(DeploymentCheckError, match="in-memory"):
        create_app(make_settings(pki, url))


def test_a_database_not_migrated_to_head_is_refused(pki: Pki, tmp_path: Path) -> None:
    make_engine(f"sqlite:///{tmp_path / 'empty.db'}").connect().close()
    with pytest.raises(DeploymentCheckError, match="revision"):
        create_app(make_settings(pki, f"sqlite:///{tmp_path / 'empty.db'}"))


def test_a_missing_ca_is_refused(db_url: str, tmp_path: Path) -> None:
    with pytest.raises(DeploymentCheckError, match="certserver init"):
        create_app(Settings(data_dir=tmp_path, database_url=db_url))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"workers": 0}, "workers"),
        ({"challenge_ttl_seconds": 900, "transaction_ttl_seconds": 600}, "challenge_ttl_seconds"),
        ({"render_pool_size": 0}, "render_pool_size"),
    ],
)
def test_contradicting_settings_are_refused(pki: Pki, tmp_path: Path, overrides: dict, message: str) -> None:
    with pytest.raises(DeploymentCheckError, match=message):
        create_app(make_settings(pki, f"sqlite:///{tmp_path / 'x.db'}", **overrides))


def test_several_workers_on_sqlite_on_a_network_file_system_are_refused(
    pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade_to_head(url)
    create_app(make_settings(pki, url, workers=2)).state.engine.dispose()  # local disk: fine
    # The mount table is the operating system's; pretend the folder is an NFS mount.
    monkeypatch.setattr(app_module, "_filesystem_type", lambda _path: "nfs4")
    with pytest.raises(DeploymentCheckError, match="network file system"):
        create_app(make_settings(pki, url, workers=2))
    create_app(make_settings(pki, url, workers=1)).state.engine.dispose()  # one worker: still fine


def test_the_file_system_of_a_path_is_read_from_the_mount_table(tmp_path: Path) -> None:
    assert app_module._filesystem_type(tmp_path) not in (None, "")


def test_serve_refuses_with_one_line_and_a_non_zero_exit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CERTSERVER_DATABASE_URL", raising=False)
    assert main(["serve", "--data-dir", str(tmp_path), "--port", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("certserver: refusing to start:")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_worker_processes_on_one_sqlite_file_serve_one_consistent_service(pki: Pki, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'service.db'}"
    upgrade_to_head(url)
    (credential,) = populated_with_kiosks(url, pki, ["K1"])
    port = _free_port()
    env = {**os.environ, "CERTSERVER_DATABASE_URL": url}
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from certserver.cli import main; sys.exit(main())",
            "serve",
            "--data-dir",
            str(pki.data_dir),
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_healthy(
            base, server, poll=0.2, describe=lambda: server.stderr.read().decode() if server.stderr else ""
        )
        card = pki.cards["toride-000"]
        # Fresh connections each time, so requests spread over both workers: the challenge
        # one worker issued must be known to the other, and spent for both.
        for _ in range(6):
            with KioskClient(base, credential) as kiosk:
                started = kiosk.start().json()
            with KioskClient(base, credential) as kiosk:
                answer = kiosk.authenticate(started["transaction_id"], card, started["challenge"])
                assert answer.status_code == 200, answer.text
            with KioskClient(base, credential) as kiosk:
                replay = kiosk.authenticate(started["transaction_id"], card, started["challenge"])
                assert replay.json()["error"]["code"] == "challenge_used"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_workers_listening_socket_gives_connections_tcp_nodelay() -> None:
    """Several workers share a socket this process binds; a connection accepted on it must
    have Nagle off, or each keep-alive response waits for the kiosk's delayed ACK."""
    import asyncio

    from certserver.cli.serve_cmd import _tcp_listener

    listener = _tcp_listener("127.0.0.1", 0)
    nodelay: list[int] = []

    async def scenario() -> None:
        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nodelay.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=listener)
        port = listener.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(100):
            if nodelay:
                break
            await asyncio.sleep(0.01)
        writer.close()
        server.close()
        await server.wait_closed()

    asyncio.run(scenario())
    assert nodelay and nodelay[0] != 0


def test_a_pretended_time_starts_the_service_clock_there_and_lets_it_run() -> None:
    # Demos and training outside service hours: the clock starts at the pretended moment.
    jst = JST
    pretend = dt.datetime(2026, 11, 26, 10, 0, tzinfo=jst)
    clock = ServiceClock.pretending_from(pretend)
    first = clock()
    assert abs((first - pretend).total_seconds()) < 5
    time.sleep(0.05)
    assert clock() > first


def test_serve_refuses_a_pretended_time_without_a_zone(pki: Pki, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve", "--data-dir", str(pki.data_dir), "--pretend-time", "2026-11-26T10:00"])
    assert code != 0
    assert "zone" in capsys.readouterr().err


def _damage_a_table_page(db: Path, table: str) -> None:
    """Scribble over the second half of one b-tree page of `table` (its root page), the way
    a torn write or a bad disk block would, leaving the file header intact."""
    import sqlite3

    with sqlite3.connect(db) as connection:
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
        root = connection.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    with db.open("r+b") as f:
        f.seek((root - 1) * page_size + 8)
        f.write(b"\xa5" * (page_size - 8))


def test_a_damaged_sqlite_database_is_refused_at_start(
    pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The start-up checks run `PRAGMA quick_check`: a damaged file is never served from."""
    db = tmp_path / "service.db"
    url = f"sqlite:///{db}"
    upgrade_to_head(url)
    populated_with_kiosks(url, pki, ["K1"])
    _damage_a_table_page(db, "residents")
    with pytest.raises(DeploymentCheckError, match="damaged"):
        create_app(make_settings(pki, url))
    monkeypatch.setenv("CERTSERVER_DATABASE_URL", url)
    assert main(["serve", "--data-dir", str(pki.data_dir), "--port", str(_free_port())]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "damaged" in err, err
