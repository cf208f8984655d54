"""What an operator's console shows: results and errors, no INFO lines and no libraries'
deprecation warnings unless -v (real processes: warnings are printed once, at import)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from certserver.documents.service import DocumentService
from certserver.documents.signing import SignerStore
from konbini_testkit import certificate_samples as samples

pytestmark = pytest.mark.slow

CERTSERVER = str(Path(sys.executable).parent / "certserver")


def _run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([CERTSERVER, *args], input=stdin, capture_output=True, text=True, timeout=120)


def _noise(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " INFO " in line or "Warning" in line or "deprecated" in line]


def test_init_card_issue_revoke_and_verify_print_no_info_lines_or_deprecation_warnings_without_v(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    init = _run("init", "--demo", "--data-dir", str(data))
    assert init.returncode == 0 and _noise(init.stderr) == [], init.stderr
    issued = _run(
        "card", "issue", "--data-dir", str(data), "--resident", "toride-0001", "--pin-stdin",
        "--out", str(tmp_path / "card.json"), stdin="1234\nABC123\n",
    )  # fmt: skip
    assert issued.returncode == 0 and _noise(issued.stderr) == [], issued.stderr
    serial = next(line.split()[-1] for line in issued.stdout.splitlines() if "auth serial" in line)
    revoked = _run("card", "revoke", "--data-dir", str(data), "--serial", serial, "--reason", "lost")
    assert revoked.returncode == 0 and _noise(revoked.stderr) == [], revoked.stderr
    pdf = tmp_path / "doc.pdf"
    samples.demo_signers(tmp_path / "ca")
    pdf.write_bytes(DocumentService(SignerStore.open(tmp_path / "ca")).render(samples.tax()).pdf)
    verified = _run("verify", "--data-dir", str(data), str(pdf))
    assert verified.stdout and _noise(verified.stderr) == [], verified.stderr
    loud = _run("card", "issue", "-v", "--data-dir", str(data), "--resident", "toride-0001", "--pin-stdin",
                "--out", str(tmp_path / "card2.json"), stdin="1234\nABC123\n")  # fmt: skip
    assert loud.returncode == 0 and any(" INFO " in line for line in loud.stderr.splitlines()), loud.stderr
