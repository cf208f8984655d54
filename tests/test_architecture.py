"""The project's structural rules (README, Layout), checked on every test run.

- The packages depend one way and have no import cycles: the contracts in pyproject.toml
  (`[tool.importlinter]`), run by import-linter's `lint-imports`.
- A command line never quietly loses a sub-command: a missing command module is an error.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_the_packages_keep_their_import_contracts() -> None:
    """cardreader imports neither Textual nor SQLAlchemy, certserver neither kiosk nor
    cardreader, kiosk no certserver, nothing imports the test kit, and no package has an
    import cycle."""
    result = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("cli", "command_module"), [
    ("certserver.cli", "certserver.cli.audit_cmd"),
    ("cardreader.cli", "cardreader.hostcli"),
])
def test_a_missing_command_module_fails_loudly(monkeypatch: pytest.MonkeyPatch, cli: str,
                                               command_module: str) -> None:
    """An installation without one of a CLI's command modules cannot build the command line,
    instead of offering every command but that one."""
    cli_module = importlib.import_module(cli)
    cli_module.build_parser()  # every command module imported once, as in a working install
    package, _, name = command_module.rpartition(".")
    cli_package, _, cli_name = cli.rpartition(".")
    # Restored after the test: the modules and the package attributes a fresh import rebinds.
    monkeypatch.setattr(importlib.import_module(package), name, None)
    monkeypatch.delattr(importlib.import_module(package), name)
    monkeypatch.setattr(importlib.import_module(cli_package), cli_name, cli_module)
    monkeypatch.setitem(sys.modules, command_module, None)  # as if it was never installed
    monkeypatch.delitem(sys.modules, cli)
    with pytest.raises(ImportError):
        importlib.import_module(cli).build_parser()
