"""The project's structural rules (README, Layout), checked on every test run.

- The packages depend one way and have no import cycles: the contracts in pyproject.toml
  (`[tool.importlinter]`), run by import-linter's `lint-imports`.
- `bench/` and `tests/` never import each other: what both need lives in a package both may
  import (the product packages, or `konbini_testkit`).
- No test module imports a conftest (they share one module name).
- A command line never quietly loses a sub-command: a missing command module is an error.
"""

from __future__ import annotations

import ast
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
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _imported_top_names(path: Path) -> set[str]:
    """The first component of every module `path` imports (absolute imports only)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
    return names


def _module_names(paths: list[Path]) -> set[str]:
    return {p.stem for p in paths} | {p.parent.name for p in paths if p.name == "__init__.py"}


def test_bench_and_tests_never_import_each_other() -> None:
    """Neither folder is on the other's import path, and neither imports a module of the
    other by its bare name (both put their own folder on sys.path)."""
    bench_files = sorted((ROOT / "bench").glob("*.py"))
    test_files = sorted((ROOT / "tests").rglob("*.py"))
    bench_modules = _module_names(bench_files) | {"bench"}
    test_modules = _module_names(test_files) - {"__init__"} | {"tests", "conftest"}
    crossings = [
        f"{p.relative_to(ROOT)} imports {sorted(_imported_top_names(p) & test_modules)}"
        for p in bench_files
        if _imported_top_names(p) & test_modules
    ]
    crossings += [
        f"{p.relative_to(ROOT)} imports {sorted(_imported_top_names(p) & bench_modules)}"
        for p in test_files
        if _imported_top_names(p) & bench_modules
    ]
    assert not crossings, "\n".join(crossings)


def test_no_test_module_imports_a_conftest() -> None:
    """Every test folder has its own conftest.py, all imported as `conftest`: `from conftest
    import X` gets whichever pytest loaded first, so a run over several folders broke at
    collection. What tests share they import from `konbini_testkit`."""
    importers = [
        str(p.relative_to(ROOT)) for p in sorted((ROOT / "tests").rglob("*.py")) if "conftest" in _imported_top_names(p)
    ]
    assert not importers


@pytest.mark.parametrize(
    ("cli", "command_module"),
    [
        ("certserver.cli", "certserver.cli.audit_cmd"),
        ("cardreader.cli", "cardreader.hostcli"),
    ],
)
def test_a_missing_command_module_fails_loudly(monkeypatch: pytest.MonkeyPatch, cli: str, command_module: str) -> None:
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
