"""The rules engine reads as the rules: small functions named after what they decide."""

from __future__ import annotations

import ast
import inspect

from certserver.services.rules import engine

LONGEST_FUNCTION_LINES = 40


def test_no_function_of_the_rules_engine_is_longer_than_a_screen() -> None:
    tree = ast.parse(inspect.getsource(engine))
    lengths = {
        node.name: node.end_lineno - node.lineno + 1  # type: ignore[operator]
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
    }
    assert {name: n for name, n in lengths.items() if n > LONGEST_FUNCTION_LINES} == {}
