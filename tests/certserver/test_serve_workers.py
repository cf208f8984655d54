"""`certserver serve --workers 2` as an operator runs it: a real supervisor with its workers
and their render processes on a loopback port, over `certserver init --demo` data.

Killed outright (SIGKILL, as the out-of-memory killer does), the supervisor leaves nothing
behind: every process it started ends, the port is free, and a restart on it comes up. And
the workers log as the supervisor does, so one log reads as one service's.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from certserver.cli.init_cmd import initialise
from certserver.config import Settings
from konbini_testkit.processkit import stop

STARTUP_SECONDS = 90.0  # two workers importing and warming their render processes on a busy machine
# The workers notice at once (parent-death signal) and shut down in order; measured ~2 s.
ORPHANS_GONE_SECONDS = 15.0
# time, level, logger (a render process names itself after it): the command's LOG_FORMAT
LOG_LINE = re.compile(
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) "
    r"[\w.]+( \[render process \d+\])?: "
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("serve-workers") / "data"
    initialise(Settings(data_dir=folder), demo=True, progress=lambda _line: None)
    return folder


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Serve:
    """One `certserver serve` run in a process group of its own (its group id is its pid),
    its stderr in a file."""

    def __init__(self, data_dir: Path, port: int, log: Path, *extra: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CERTSERVER_")}
        self.port = port
        self.log = log
        with log.open("wb") as stderr:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "import sys; from certserver.cli import main; sys.exit(main())",
                    "serve",
                    "--data-dir",
                    str(data_dir),
                    "--port",
                    str(port),
                    *extra,
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_lines(self) -> list[str]:
        return [line for line in self.log.read_text(errors="replace").splitlines() if line.strip()]

    def wait_until_serving(self, workers: int) -> None:
        """Until every worker has finished its start-up (render processes warm) and the
        port answers /api/v1/health 200."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            started = sum("Application startup complete" in line for line in self.log_lines())
            if started >= workers and _health(self.port) == 200:
                return
            assert self.process.poll() is None, "serve exited:\n" + "\n".join(self.log_lines()[-20:])
            assert time.monotonic() < deadline, "serve did not start:\n" + "\n".join(self.log_lines()[-20:])
            time.sleep(0.2)

    def group(self) -> dict[int, str]:
        """The live processes of this run's process group (pid: command line); the workers,
        render processes, fork servers and resource tracker all stay in it."""
        return _live_processes_of_group(self.pid)

    def stop(self) -> None:
        """SIGTERM (the orderly way); then SIGKILL what is left of the group, by pid."""
        stop(self.process)
        for pid in self.group():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@dataclass(frozen=True)
class KilledRun:
    """What became of a `serve --workers 2 --render-processes 2` whose supervisor was SIGKILLed."""

    port: int
    processes_before: dict[int, str]  # its process group while it served
    left_after: dict[int, str]  # what of it still ran ORPHANS_GONE_SECONDS after the kill
    seconds_until_gone: float
    log_lines: list[str]  # stderr of the supervisor and its workers, start to end


@pytest.fixture(scope="module")
def killed_run(demo_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KilledRun]:
    """One real run, killed; its tests each check one consequence (a start costs seconds)."""
    port = _free_port()
    run = Serve(
        demo_data, port, tmp_path_factory.mktemp("killed") / "serve.log", "--workers", "2", "--render-processes", "2"
    )
    try:
        run.wait_until_serving(workers=2)
        before = run.group()
        run.process.kill()  # no shutdown of its own, as after an out-of-memory kill
        run.process.wait(timeout=10)
        killed_at = time.monotonic()
        while run.group() and time.monotonic() - killed_at < ORPHANS_GONE_SECONDS:
            time.sleep(0.05)
        yield KilledRun(port, before, run.group(), time.monotonic() - killed_at, run.log_lines())
    finally:
        run.stop()


@pytest.fixture
def runs() -> Iterator[list[Serve]]:
    started: list[Serve] = []
    yield started
    for run in started:
        run.stop()


def _health(port: int) -> int | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code
    except httpx.HTTPError:
        return None


def _live_processes_of_group(pgid: int) -> dict[int, str]:
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # ended meanwhile
            continue
        # Fields after "(comm)": state, ppid, pgrp, ...; a zombie has ended (only not yet reaped).
        state, _ppid, group = stat.rpartition(")")[2].split()[:3]
        if int(group) == pgid and state != "Z":
            found[int(entry.name)] = command.strip()
    return found


def _port_is_free(port: int) -> bool:
    """Whether a new server could listen on `port` (as `serve` binds it: SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
    return True


def test_killing_the_supervisor_ends_its_workers_and_their_render_processes(killed_run: KilledRun) -> None:
    # The supervisor, 2 workers and 2 render processes each at least (fork servers and the
    # resource tracker besides): the test really has children and grandchildren to lose.
    assert len(killed_run.processes_before) >= 7, killed_run.processes_before
    assert killed_run.left_after == {}, f"still running {killed_run.seconds_until_gone:.1f} s after the kill"


def test_after_the_kill_the_port_is_free_and_a_restart_on_it_serves(
    killed_run: KilledRun, demo_data: Path, tmp_path: Path, runs: list[Serve]
) -> None:
    assert _port_is_free(killed_run.port)
    restarted = Serve(demo_data, killed_run.port, tmp_path / "serve.log", "--workers", "2", "--render-processes", "2")
    runs.append(restarted)
    restarted.wait_until_serving(workers=2)
    assert _health(killed_run.port) == 200


def test_the_workers_log_in_the_supervisors_format(killed_run: KilledRun) -> None:
    """Every line, the supervisor's and each worker's, uvicorn's and the service's, has the
    command's time stamp, level and logger; the service's INFO lines in the workers are kept."""
    lines = killed_run.log_lines
    assert [line for line in lines if not LOG_LINE.match(line)] == []
    # Only a worker's app reaches its lifespan (the supervisor only checks the configuration).
    assert sum("INFO certserver.app: certserver ready" in line for line in lines) == 2
    assert sum("INFO uvicorn.error: Started server process" in line for line in lines) == 2


HUNG_WORKER = """
import multiprocessing, os, signal, time
from certserver.cli import serve_cmd


def worker() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # stands for a shutdown that never finishes
    serve_cmd.ORPHAN_SHUTDOWN_SECONDS = 0.5
    serve_cmd._end_with_the_supervisor(multiprocessing.parent_process())
    print(os.getpid(), flush=True)
    time.sleep(120)


if __name__ == "__main__":
    child = multiprocessing.get_context("spawn").Process(target=worker)  # as uvicorn starts its workers
    child.start()
    child.join(120)  # exits early (closing the test's pipe) if the worker fails
"""


def test_a_worker_whose_shutdown_hangs_is_ended_once_its_supervisor_is_gone(tmp_path: Path) -> None:
    script = tmp_path / "supervisor.py"
    script.write_text(HUNG_WORKER)
    supervisor = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert supervisor.stdout is not None
        readable, _, _ = select.select([supervisor.stdout], [], [], STARTUP_SECONDS)
        assert readable, "the worker did not start watching its supervisor"
        worker = int(supervisor.stdout.readline())  # it watches now
    finally:
        supervisor.kill()
        supervisor.wait(timeout=10)
    deadline = time.monotonic() + ORPHANS_GONE_SECONDS
    while _live_processes_of_group(supervisor.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = _live_processes_of_group(supervisor.pid)
    for pid in left:  # leave nothing behind even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert worker not in left
