"""A card file that is not UTF-8, nested without end, or whose PIN verifier asks for an
absurd PBKDF2 iteration count is a damaged card file: CardFileError when loaded, and one
line with a non-zero exit from every command that opens it, never a traceback or a hang."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from konbini_common.cardfile import MAX_PBKDF2_ITERATIONS, CardFile, CardFileError, check_verifier
from konbini_testkit.cards import PIN, make_card

REPO = Path(__file__).resolve().parents[2]


def absurd_iterations(path: Path) -> None:
    raw = json.loads(path.read_text())
    scheme, _iterations, salt, digest = raw["pins"]["auth"]["verifier"].split("$")
    raw["pins"]["auth"]["verifier"] = "$".join((scheme, str(2 * 10**9), salt, digest))
    path.write_text(json.dumps(raw))


def not_utf8(path: Path) -> None:
    path.write_bytes(path.read_bytes().replace(b'"label": "', b'"label": "\xff\xfe'))


def nested_too_deeply(path: Path) -> None:
    path.write_bytes(b'{"format": ' + b"[" * 200_000 + b"]" * 200_000 + b"}")


DAMAGES: dict[str, Callable[[Path], None]] = {
    "absurd PBKDF2 iterations": absurd_iterations,
    "not UTF-8": not_utf8,
    "nested too deeply": nested_too_deeply,
}


@pytest.fixture(params=sorted(DAMAGES))
def damaged_card(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    path = make_card(tmp_path / "card.json")
    DAMAGES[request.param](path)
    return path


def test_a_damaged_card_file_is_a_card_file_error(damaged_card: Path) -> None:
    began = time.monotonic()
    with pytest.raises(CardFileError):
        CardFile.load(damaged_card)
    assert time.monotonic() - began < 5


def test_a_verifier_beyond_the_iteration_bound_never_matches_and_costs_no_time() -> None:
    began = time.monotonic()
    assert not check_verifier(f"pbkdf2-sha256${10**12}$AAAA$AAAA", PIN.encode())
    assert not check_verifier(f"pbkdf2-sha256${MAX_PBKDF2_ITERATIONS + 1}$AAAA$AAAA", PIN.encode())
    assert time.monotonic() - began < 1


MYNACARD = "import sys; from cardreader.cli import main; sys.exit(main())"
KIOSK = "import sys; from kiosk.cli import main; sys.exit(main())"


@pytest.mark.parametrize(
    "argv",
    [
        (MYNACARD, "verify", "--card", "{card}", "--pin-stdin"),
        (MYNACARD, "reset-pin", "{card}", "--pin-stdin"),
        (KIOSK, "simulate", "--server", "http://127.0.0.1:9", "--kiosk-id", "K1", "--card", "{card}", "--pin-stdin"),
    ],
)
def test_every_command_that_opens_a_damaged_card_file_says_so_in_one_line(
    damaged_card: Path, argv: tuple[str, ...]
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", *(a.format(card=damaged_card) for a in argv)],
        input=PIN + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO), KIOSK_SECRET="s"),
        check=False,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and "Traceback" not in done.stderr and len(lines) == 1, done.stderr
    assert "card file" in lines[0]
