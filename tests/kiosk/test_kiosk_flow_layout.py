"""The kiosk's state machine is three modules: what happened (`kiosk.events`), what the
caller must do (`kiosk.effects`) and the machine itself (`kiosk.flow`), which re-exports the
other two so that callers write `flow.Pressed`, `flow.ReadCard`."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import kiosk
from kiosk import effects, events
from kiosk import flow as f

KIOSK_DIR = Path(kiosk.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def _classes(module: object) -> dict[str, type]:
    return {
        name: value
        for name, value in vars(module).items()
        if inspect.isclass(value) and value.__module__ == module.__name__  # type: ignore[attr-defined]
    }


@pytest.mark.parametrize("module", ["events.py", "effects.py"])
def test_events_and_effects_are_plain_data_without_textual_or_io(module: str) -> None:
    assert _imports(KIOSK_DIR / module) <= {"__future__", "dataclasses", "enum", "kiosk"}


@pytest.mark.parametrize("module", [events, effects])
def test_the_flow_re_exports_every_event_and_effect(module: object) -> None:
    classes = _classes(module)
    assert classes
    for name, cls in classes.items():
        assert getattr(f, name) is cls, name
        assert name in f.__all__, name


def test_every_kind_of_result_has_its_own_case_in_the_machine() -> None:
    """A result with no case would be dropped silently, and the visit would hang."""
    tree = ast.parse(inspect.getsource(f.KioskFlow))
    handler = next(node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == "_on_result")
    matched = {
        node.cls.id for node in ast.walk(handler) if isinstance(node, ast.MatchClass) and isinstance(node.cls, ast.Name)
    }
    results = {
        name for name, cls in _classes(events).items() if issubclass(cls, events.Result) and cls is not events.Result
    }
    assert results and results == matched


def test_no_method_of_the_machine_is_longer_than_a_screen() -> None:
    tree = ast.parse(inspect.getsource(f))
    lengths = {
        node.name: node.end_lineno - node.lineno + 1  # type: ignore[operator]
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
    }
    assert {name: n for name, n in lengths.items() if n > 40} == {}
