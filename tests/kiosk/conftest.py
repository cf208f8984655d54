"""Fixtures of the kiosk tests: the real service with demo data (see servicekit.py)."""

from __future__ import annotations

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
def anyio_backend() -> str:
    """Pilot tests run on asyncio, through anyio's pytest plugin (no extra plugin needed)."""
    return "asyncio"
