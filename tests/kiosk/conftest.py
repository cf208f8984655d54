"""Fixtures of the kiosk tests: the real service with demo data (see servicekit.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from servicekit import DemoTemplate, Service, make_demo, start_service


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> DemoTemplate:
    folder = tmp_path_factory.mktemp("demo-template") / "data"
    return DemoTemplate(folder, make_demo(folder))


@pytest.fixture
def service(demo_template: DemoTemplate, tmp_path: Path) -> Iterator[Service]:
    yield from start_service(demo_template, tmp_path / "service")


@pytest.fixture
def screens_dir(tmp_path: Path) -> Path:
    """Where the screenshot tests save the pictures: the README's docs/screens/ with
    KONBINI_UPDATE_SCREENS=1 (to refresh them), a folder of the test's otherwise, so that a
    test run leaves the repository as it was."""
    if os.environ.get("KONBINI_UPDATE_SCREENS") == "1":
        return Path(__file__).resolve().parents[2] / "docs" / "screens"
    folder = tmp_path / "screens"
    folder.mkdir()
    return folder


@pytest.fixture
def anyio_backend() -> str:
    """Pilot tests run on asyncio, through anyio's pytest plugin (no extra plugin needed)."""
    return "asyncio"
