"""bench/service_steps_bench.py runs the seven steps of a transaction in-process and
reports, per step, time, SQL statements and the database driver's share."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "service_steps_bench.py"


def test_the_steps_bench_reports_every_step_with_its_statements() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--transactions", "5"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=BENCH.parent,
        check=True,
    )
    rows = {
        m[1]: (float(m[2]), float(m[3]), float(m[4]))
        for m in re.finditer(r"^(\w+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+\d+%$", result.stdout, re.MULTILINE)
    }
    assert set(rows) == {"start", "authenticate", "order", "payment", "documents", "fetch", "printed", "transaction"}
    for step, (ms, statements, driver_ms) in rows.items():
        assert ms > 0 and statements >= 1 and 0 < driver_ms < ms, step
    # The whole is the sum of its steps (one fetch per transaction: one copy ordered).
    assert abs(sum(r[1] for s, r in rows.items() if s != "transaction") - rows["transaction"][1]) < 0.2
    assert "STUBBED" in result.stdout
