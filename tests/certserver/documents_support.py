"""Shared by the document tests: demo signing keys and a character the font lacks.

Import `ca_dir` into a test module to use it as a fixture (one set of keys per module)."""

from __future__ import annotations

from pathlib import Path

import pytest

from konbini_testkit import certificate_samples as samples

GAIJI = "\U00020bb7"  # 𠮷 (つちよし): not in IPAex


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA folder with the demo municipalities' document signers."""
    ca_dir = tmp_path_factory.mktemp("docs") / "ca"
    samples.demo_signers(ca_dir)
    return ca_dir
