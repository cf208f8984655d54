"""Helpers for tests and benches that run the service or a card reader in other processes:
waiting until a started service answers, and the vpcd reader locks every run shares.

The benches import this too (from konbini_testkit, which both may import), so
a bench and a test running at the same time agree on the same locks.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from collections.abc import Callable

import httpx

HEALTH_PATH = "/api/v1/health"


class ServiceNotReadyError(RuntimeError):
    """A started service exited, or did not answer its health check in time."""


def wait_until_healthy(
    url: str,
    process: subprocess.Popen[bytes],
    *,
    timeout: float = 60.0,
    poll: float = 0.1,
    describe: Callable[[], str] = lambda: "",
) -> None:
    """Return once GET `url`/api/v1/health answers 200.

    Raises ServiceNotReadyError when `process` exits first or `timeout` seconds pass; its
    message ends with `describe()` (the service's log, say).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}{HEALTH_PATH}", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise ServiceNotReadyError(f"the service exited with {process.returncode}\n{describe()}".rstrip())
        if time.monotonic() >= deadline:
            raise ServiceNotReadyError(f"the service did not start in {timeout:.0f} s\n{describe()}".rstrip())
        time.sleep(poll)


def vpcd_lock(port: int, *, wait: bool) -> int | None:
    """The open, flock-ed lock file of the vpcd reader on `port` (close it to release), or
    None when another run holds it and `wait` is False. Raises OSError."""
    fd = os.open(f"/tmp/konbini-vpcd-{port}.lock", os.O_CREAT | os.O_RDWR, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def stop(process: subprocess.Popen[bytes], *, grace: float = 30.0) -> None:
    """SIGTERM `process` and reap it; SIGKILL it if it has not ended after `grace` seconds.
    Raises subprocess.TimeoutExpired only if even SIGKILL does not end it within 10 s."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
