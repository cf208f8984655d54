"""The one wait-until-ready and the one vpcd reader lock that the tests and benches share."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from konbini_testkit.processkit import ServiceNotReadyError, vpcd_lock, wait_until_healthy


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_service_that_exits_before_answering_is_reported_with_its_log() -> None:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    try:
        with pytest.raises(ServiceNotReadyError, match=r"exited with 3\nthe log"):
            wait_until_healthy(f"http://127.0.0.1:{_unused_port()}", process, timeout=30, describe=lambda: "the log")
    finally:
        process.wait(timeout=10)


def test_a_service_that_never_answers_is_given_up_on_in_time() -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(ServiceNotReadyError, match="did not start"):
            wait_until_healthy(f"http://127.0.0.1:{_unused_port()}", process, timeout=0.5)
    finally:
        process.kill()
        process.wait(timeout=10)


def test_a_held_reader_lock_is_refused_to_a_second_run_until_released() -> None:
    port = 1  # no real vpcd reader listens here: the lock is ours alone
    held = vpcd_lock(port, wait=False)
    assert held is not None
    try:
        assert vpcd_lock(port, wait=False) is None  # flock is per open file: a second run is refused
    finally:
        os.close(held)
    again = vpcd_lock(port, wait=False)
    assert again is not None
    os.close(again)
