"""No secret on the kiosk's command line, where every user of the machine can read it
(`ps`, /proc/PID/cmdline, shell history): the PIN comes from KIOSK_PIN, --pin-file or
--pin-stdin, the kiosk secret from KIOSK_SECRET, KIOSK_CREDENTIAL or --kiosk-secret-file,
the operator code from KIOSK_OPERATOR_CODE. The old flags are refused in one line.

Files holding secrets (a credentials file of `kiosk load`) that are not text give one line too.
Each test runs the real `kiosk` entry point as a process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from servicekit import Service

KIOSK = [sys.executable, "-c", "import sys; from kiosk.cli import main; sys.exit(main())"]


def kiosk(
    *argv: str, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    return subprocess.run(
        [*KIOSK, *argv],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=timeout,
        check=False,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr and len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize(
    "argv",
    [
        ("simulate", "--card", "card.json", "--pin", "4826"),
        ("simulate", "--card", "card.json", "--kiosk-id", "K1", "--kiosk-secret=S3cret-4826"),
        ("run", "--kiosk-id", "K1", "--operator-code", "4826"),
    ],
)
def test_a_secret_on_the_command_line_is_refused_in_one_line_that_does_not_repeat_it(
    tmp_path: Path, argv: tuple[str, ...]
) -> None:
    done = kiosk(*argv, "--server", "http://127.0.0.1:9", env={"KIOSK_SECRET": "from-env", "KIOSK_PIN": "1234"})
    line = one_line(done)
    assert "is refused" in line and "4826" not in line
    assert done.stdout == ""


def test_the_pin_comes_from_stdin_and_the_kiosk_secret_from_a_file(service: Service, tmp_path: Path) -> None:
    card = service.card("toride-0001")
    secret_file = tmp_path / "kiosk-secret"
    secret_file.write_text(service.kiosk_secret + "\n")
    done = kiosk(
        "simulate",
        "--server",
        service.url,
        "--kiosk-id",
        service.kiosk_id,
        "--kiosk-secret-file",
        str(secret_file),
        "--card",
        str(card.path),
        "--pin-stdin",
        "--certificate",
        "inkan",
        "--out",
        str(tmp_path / "out"),
        stdin=card.pin + "\n",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "issued"


def test_the_pin_comes_from_a_file_or_the_environment(service: Service, tmp_path: Path) -> None:
    card = service.card("toride-0001")
    pin_file = tmp_path / "pin"
    pin_file.write_text(card.pin + "\n")
    common = (
        "simulate",
        "--server",
        service.url,
        "--kiosk-id",
        service.kiosk_id,
        "--card",
        str(card.path),
        "--certificate",
        "inkan",
        "--out",
        str(tmp_path / "out"),
    )
    from_file = kiosk(*common, "--pin-file", str(pin_file), env={"KIOSK_SECRET": service.kiosk_secret})
    from_env = kiosk(*common, env={"KIOSK_SECRET": service.kiosk_secret, "KIOSK_PIN": card.pin})
    for done in (from_file, from_env):
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["status"] == "issued"


def test_without_a_pin_and_without_a_terminal_simulate_says_where_a_pin_comes_from(tmp_path: Path) -> None:
    """No KIOSK_PIN, no --pin-file, stdin not a terminal: one line at once, no prompt, no hang."""
    done = kiosk(
        "simulate",
        "--server",
        "http://127.0.0.1:9",
        "--card",
        str(tmp_path / "c.json"),
        env={"KIOSK_ID": "K1", "KIOSK_SECRET": "s"},
        timeout=60,
    )
    assert "no PIN" in one_line(done)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"\xff\xfe1\x002\x00", "not UTF-8 text"),
        (b"", "no PIN on its first line"),
        (b"12ab\n", "4 digits"),
    ],
)
def test_a_bad_pin_file_is_one_line_that_never_quotes_it(tmp_path: Path, content: bytes, fragment: str) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_bytes(content)
    done = kiosk(
        "simulate",
        "--server",
        "http://127.0.0.1:9",
        "--card",
        str(tmp_path / "c.json"),
        "--pin-file",
        str(pin_file),
        env={"KIOSK_ID": "K1", "KIOSK_SECRET": "s"},
    )
    line = one_line(done)
    assert fragment in line and "12ab" not in line


def test_a_missing_kiosk_secret_file_is_one_line(tmp_path: Path) -> None:
    done = kiosk(
        "simulate",
        "--server",
        "http://127.0.0.1:9",
        "--card",
        str(tmp_path / "c.json"),
        "--kiosk-id",
        "K1",
        "--kiosk-secret-file",
        str(tmp_path / "none"),
        env={"KIOSK_PIN": "1234"},
    )
    assert "cannot read the kiosk secret file" in one_line(done)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"K1:\xff\xfesecret\n", "is not UTF-8 text"),
        (b"# made by certserver kiosk add\nK1:s1\n\njust-an-id\n", "line 4 is not id:secret"),
    ],
)
def test_a_bad_credentials_file_for_load_is_one_line_that_never_quotes_it(
    tmp_path: Path, content: bytes, fragment: str
) -> None:
    credentials = tmp_path / "kiosks.txt"
    credentials.write_bytes(content)
    done = kiosk(
        "load",
        "--server",
        "http://127.0.0.1:9",
        "--credentials",
        str(credentials),
        "--kiosks",
        "1",
        "--transactions",
        "1",
        "--cards",
        str(tmp_path),
    )
    line = one_line(done)
    assert fragment in line and "just-an-id" not in line and "\ufffd" not in line


def test_a_demo_card_index_nested_too_deeply_is_one_line(tmp_path: Path) -> None:
    credentials = tmp_path / "kiosks.txt"
    credentials.write_text("K1:s\n")
    (tmp_path / "index.json").write_bytes(b"[" * 200_000 + b"]" * 200_000)
    done = kiosk(
        "load",
        "--server",
        "http://127.0.0.1:9",
        "--credentials",
        str(credentials),
        "--kiosks",
        "1",
        "--transactions",
        "1",
        "--cards",
        str(tmp_path),
    )
    assert "no readable demo card index" in one_line(done)
