"""The project's style rules, checked with the tests: ruff's lint selection (`[tool.ruff]`
in pyproject.toml, its exceptions stated there) finds nothing, and every file is as
`ruff format` writes it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    "command", [("check", "--quiet", "."), ("format", "--check", "--quiet", ".")], ids=["lint", "format"]
)
def test_ruff_finds_nothing(command: tuple[str, ...]) -> None:
    run = _ruff(*command)
    assert run.returncode == 0, f"ruff {' '.join(command)}:\n{run.stdout}{run.stderr}"
