"""JUnit XML reports of kiosk runs (`kiosk load --junit`, `kiosk scenario --junit`), the
format CI systems read: one <testcase> per visit, a <failure> when it did not end as
expected. Case names carry the card file's name (a synthetic resident id) and the outcome
codes, never a PIN or a resident's details.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from konbini_common.durable import write_atomic


@dataclass(frozen=True)
class JunitCase:
    name: str
    classname: str
    seconds: float
    failure: str | None = None  # None: passed


def junit_xml(suite: str, cases: Sequence[JunitCase], *, elapsed: float | None = None) -> bytes:
    """The report as bytes (UTF-8, with its XML declaration). The suite's time is `elapsed`
    (the run's wall time, when its visits ran side by side as in `kiosk load`), else the
    sum of its cases' times (visits one after another)."""
    failures = sum(1 for case in cases if case.failure is not None)
    total = sum(case.seconds for case in cases) if elapsed is None else elapsed
    root = ET.Element("testsuites", tests=str(len(cases)), failures=str(failures), time=f"{total:.3f}")
    suite_element = ET.SubElement(
        root, "testsuite", name=suite, tests=str(len(cases)), failures=str(failures), errors="0", time=f"{total:.3f}"
    )
    for case in cases:
        element = ET.SubElement(
            suite_element, "testcase", name=case.name, classname=case.classname, time=f"{case.seconds:.3f}"
        )
        if case.failure is not None:
            ET.SubElement(element, "failure", message=case.failure).text = case.failure
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(path: Path, suite: str, cases: Sequence[JunitCase], *, elapsed: float | None = None) -> None:
    """Write the report to `path` atomically (mode 0600). Raises OSError."""
    write_atomic(Path(path), junit_xml(suite, cases, elapsed=elapsed))
