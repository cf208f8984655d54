"""`mynacard insert` and `mynacard reset-pin` run as the user runs them: in a subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_virtualcard_files import JPKI, Card, select_df, select_ef, verify
from test_vpcd_bridge import SELECT_JPKI, _connect, _eventually, _wait_until_absent

from konbini_common.cardfile import CardFile
from konbini_testkit.cards import PIN, make_card

REPO = Path(__file__).resolve().parents[2]


def mynacard(*args: str, **options) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-c", "import sys; from cardreader.cli import main; sys.exit(main())", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        **options,
    )


def start_insert(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; from cardreader.cli import main; sys.exit(main())", "insert", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )


@pytest.fixture
def card_path(tmp_path: Path) -> Path:
    return make_card(tmp_path / "card.json")


def lock_auth_pin(path: Path) -> None:
    card = Card(path)
    card.ok(select_df(JPKI), select_ef("0018"))
    for _ in range(3):
        card.send(verify("0000"))
    assert card.sw(verify(PIN)) == "6984"


# -- insert --------------------------------------------------------------------------------


@pytest.mark.pcsc
def test_insert_serves_until_sigterm_and_sigusr1_toggles_removal(vpcd_slot, card_path: Path) -> None:  # type: ignore[no-untyped-def]
    process = start_insert(str(card_path), "--port", str(vpcd_slot.port), "--host", vpcd_slot.host)
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert vpcd_slot.reader in banner and "inserted" in banner
        connection = _eventually(lambda: _connect(vpcd_slot.reader))
        assert connection.transmit(SELECT_JPKI)[1:] == (0x90, 0x00)
        connection.disconnect()
        process.send_signal(signal.SIGUSR1)
        assert "removed" in process.stdout.readline()
        _wait_until_absent(vpcd_slot.reader)
        process.send_signal(signal.SIGUSR1)
        assert "inserted" in process.stdout.readline()
        _eventually(lambda: _connect(vpcd_slot.reader)).disconnect()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert "removed" in process.stdout.read()
        _wait_until_absent(vpcd_slot.reader)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.pcsc
def test_insert_stops_cleanly_on_ctrl_c(vpcd_slot, card_path: Path) -> None:  # type: ignore[no-untyped-def]
    process = start_insert(str(card_path), "--port", str(vpcd_slot.port))
    try:
        assert process.stdout is not None and "inserted" in process.stdout.readline()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        assert process.stderr is not None and "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_insert_without_vpcd_says_pcscd_with_vpcd_must_run(card_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = mynacard("insert", str(card_path), "--port", str(port))
    assert done.returncode == 6
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "vsmartcard-vpcd" in lines[0] and lines[0].startswith("mynacard: ")


@pytest.mark.parametrize(
    "content, message", [(None, "No such file"), ("{not json", "not JSON"), ('{"format": "other"}', "not a version-1")]
)
def test_insert_with_a_bad_card_file_prints_one_line(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "card.json"
    if content is not None:
        path.write_text(content)
    done = mynacard("insert", str(path))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and done.stdout == ""


# -- reset-pin -----------------------------------------------------------------------------


def test_reset_pin_unlocks_a_locked_auth_pin_with_a_new_pin(card_path: Path) -> None:
    lock_auth_pin(card_path)
    done = mynacard("reset-pin", str(card_path), "--pin-stdin", input="2468" + "\n")
    assert done.returncode == 0, done.stderr
    assert "2468" not in done.stdout + done.stderr
    assert CardFile.load(card_path).pins["auth"].tries_left == 3
    card = Card(card_path)
    card.ok(select_df(JPKI), select_ef("0018"))
    assert card.sw(verify(PIN)) == "63C2"
    assert card.sw(verify("2468")) == "9000"


def test_reset_pin_prompts_twice_without_echo(card_path: Path) -> None:
    done = mynacard(
        "reset-pin", str(card_path), "--which", "sign", input="newpass9\nnewpass9\n", start_new_session=True
    )
    assert done.returncode == 0, done.stderr
    assert "newpass9" not in done.stdout.lower() + done.stderr.lower()
    card = Card(card_path)
    assert card.sw(select_df(JPKI), select_ef("001B"), verify("NEWPASS9")) == "9000"


def test_reset_pin_refuses_differing_entries(card_path: Path) -> None:
    before = card_path.read_bytes()
    done = mynacard("reset-pin", str(card_path), input="1111\n2222\n", start_new_session=True)
    assert done.returncode == 2 and "differ" in done.stderr
    assert card_path.read_bytes() == before


@pytest.mark.parametrize("which, pin", [("auth", "123"), ("kenhojo", "abcd"), ("sign", "AB1")])
def test_reset_pin_refuses_a_pin_of_the_wrong_form(card_path: Path, which: str, pin: str) -> None:
    before = card_path.read_bytes()
    done = mynacard("reset-pin", str(card_path), "--which", which, "--pin-stdin", input=pin + "\n")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "nothing was changed" in done.stderr
    assert card_path.read_bytes() == before


def test_reset_pin_of_a_missing_card_file_is_one_line(tmp_path: Path) -> None:
    done = mynacard("reset-pin", str(tmp_path / "none.json"), "--pin-stdin", input="1234" + "\n")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("flag", ["--new-pin", "--pin"])
def test_reset_pin_refuses_a_new_pin_on_the_command_line_without_repeating_it(card_path: Path, flag: str) -> None:
    """An argument is visible to every user of the machine (ps): refused, nothing changed.
    (`--pin` was taken by argparse for `--pin-stdin`, and its error printed the PIN back.)"""
    before = card_path.read_bytes()
    for argv in ([flag, "2468"], [f"{flag}=2468"]):
        done = mynacard("reset-pin", str(card_path), *argv)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert "is refused" in lines[0] and "2468" not in done.stderr
    assert card_path.read_bytes() == before


@pytest.mark.parametrize("argv", [["--pin", "1234"], ["--pin=1234"]])
def test_verify_refuses_a_pin_on_the_command_line_without_repeating_it(card_path: Path, argv: list[str]) -> None:
    before = card_path.read_bytes()
    done = mynacard("verify", "--card", str(card_path), *argv)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "--pin is refused" in lines[0] and "1234" not in done.stderr + done.stdout
    assert card_path.read_bytes() == before  # no try spent


def test_reset_pin_with_no_input_at_all_is_one_line(card_path: Path) -> None:
    """No terminal and an empty standard input: the prompt meets its end, one line, no change."""
    before = card_path.read_bytes()
    done = mynacard("reset-pin", str(card_path), stdin=subprocess.DEVNULL, start_new_session=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == "mynacard: no new PIN was entered; nothing was changed"
    assert card_path.read_bytes() == before


def test_reset_pin_reaches_a_card_that_is_in_use(card_path: Path) -> None:
    card = Card(card_path)
    card.ok(select_df(JPKI), select_ef("0018"))
    for _ in range(3):
        card.send(verify("0000"))
    assert mynacard("reset-pin", str(card_path), "--pin-stdin", input="8642" + "\n").returncode == 0
    time.sleep(0.01)
    assert card.sw("00200080") == "63C3"
    assert card.sw(verify("8642")) == "9000"
