"""The project's type rule, checked with the tests: mypy, configured by `[tool.mypy]` in
pyproject.toml (the three packages and bench/; an unused `# type: ignore` is an error too),
reports nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Without .mypy_cache it takes up to a minute on a busy 2-core machine; with it, 2-5 s.
MYPY_SECONDS = 240


@pytest.mark.typing
def test_mypy_reports_no_errors_in_the_packages() -> None:
    """`mypy` from the repository root, with the project's configuration, exits 0 (mypy
    comes with the dev extras)."""
    run = subprocess.run(
        [sys.executable, "-m", "mypy"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=MYPY_SECONDS,
        check=False,
    )
    assert run.returncode == 0, f"mypy found type errors:\n{run.stdout}{run.stderr}"
