"""Repeatable runs: `kiosk scenario FILE.toml` runs visits with expected outcomes against a
running service and exits 0 only when all match; it and `kiosk load` write JUnit XML. The
service is the harness plugin's `konbini_service` (a real `certserver serve` process)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from konbini_pytest import KonbiniService

SCENARIO = """
cards = "{cards}"

[[visit]]
name = "juminhyo paid with a 1000-yen note"
card = "toride-0001"
certificate = "juminhyo"
pay = 1000
expect = {{ status = "issued", documents = 1, paid = 1000 }}

[[visit]]
name = "a resident who moved out is refused"
card = "toride-0030"
expect = {{ status = "error", code = "{moved_out_code}" }}

[[visit]]
name = "a wrong PIN costs a try"
card = "toride-0002"
pin = "0000"
expect = {{ status = "error", code = "wrong_pin", tries_left = 2 }}
"""


def kiosk(service: KonbiniService, *args: str) -> subprocess.CompletedProcess[str]:
    credential = service.new_kiosk()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")} | credential.environment
    return subprocess.run(
        [sys.executable, "-c", "import sys; from kiosk.cli import main; sys.exit(main())", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


KIOSK_COMMAND = (sys.executable, "-c", "import sys; from kiosk.cli import main; sys.exit(main())")


def junit(path: Path) -> ET.Element:
    return ET.parse(path).getroot()


def write_scenario(tmp_path: Path, service: KonbiniService, moved_out_code: str = "resident_moved_out") -> Path:
    path = tmp_path / "visits.toml"
    path.write_text(SCENARIO.format(cards=service.cards_dir, moved_out_code=moved_out_code), encoding="utf-8")
    return path


def test_a_scenario_whose_visits_all_end_as_expected_passes_with_a_junit_report(
    konbini_service: KonbiniService, tmp_path: Path
) -> None:
    report = tmp_path / "scenario.xml"
    run = kiosk(
        konbini_service,
        "scenario",
        str(write_scenario(tmp_path, konbini_service)),
        "--server",
        konbini_service.url,
        "--junit",
        str(report),
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 of 3 visits as expected" in run.stdout
    root = junit(report)
    assert (root.get("tests"), root.get("failures")) == ("3", "0")
    names = [case.get("name") for case in root.iter("testcase")]
    assert names == [
        "juminhyo paid with a 1000-yen note",
        "a resident who moved out is refused",
        "a wrong PIN costs a try",
    ]


def test_a_visit_that_ends_otherwise_fails_the_scenario_and_says_how(
    konbini_service: KonbiniService, tmp_path: Path
) -> None:
    report = tmp_path / "scenario.xml"
    scenario = write_scenario(tmp_path, konbini_service, moved_out_code="something_else")
    run = kiosk(konbini_service, "scenario", str(scenario), "--server", konbini_service.url, "--junit", str(report))
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAIL a resident who moved out is refused" in run.stdout
    failures = [case for case in junit(report).iter("testcase") if case.find("failure") is not None]
    assert [case.get("name") for case in failures] == ["a resident who moved out is refused"]
    message = failures[0].find("failure").get("message")  # type: ignore[union-attr]
    assert message == "code: expected 'something_else', got 'resident_moved_out'"


def test_a_visit_that_expects_nothing_fails_when_the_service_is_down(konbini_demo_data: Path, tmp_path: Path) -> None:
    """Without an expected status a visit must still be issued: a CI job pointed at a dead
    service does not pass."""
    path = tmp_path / "visits.toml"
    path.write_text(f'cards = "{konbini_demo_data / "cards"}"\n[[visit]]\ncard = "toride-0001"\n', encoding="utf-8")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"  # bound, never listening
        env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")} | {"KIOSK_CREDENTIAL": "K1:secret"}
        run = subprocess.run(
            [*KIOSK_COMMAND, "scenario", str(path), "--server", dead],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=False,
        )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "status: expected 'issued', got 'error'" in run.stdout


def test_a_broken_scenario_file_is_refused_in_one_line(konbini_service: KonbiniService, tmp_path: Path) -> None:
    scenario = tmp_path / "broken.toml"
    scenario.write_text('[[visit]]\ncard = "nobody"\n', encoding="utf-8")
    run = kiosk(konbini_service, "scenario", str(scenario), "--server", konbini_service.url)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "card 'nobody'" in run.stderr and "Traceback" not in run.stderr


def test_kiosk_load_writes_one_junit_case_per_visit(konbini_service: KonbiniService, tmp_path: Path) -> None:
    credentials = tmp_path / "kiosks.txt"
    pairs = [konbini_service.new_kiosk() for _ in range(2)]
    credentials.write_text("".join(f"{c.kiosk_id}:{c.secret}\n" for c in pairs), encoding="utf-8")
    report = tmp_path / "load.xml"
    run = kiosk(
        konbini_service,
        "load",
        "--server",
        konbini_service.url,
        "--credentials",
        str(credentials),
        "--kiosks",
        "2",
        "--transactions",
        "4",
        "--cards",
        str(konbini_service.cards_dir),
        "--junit",
        str(report),
        "--json",
    )
    assert run.returncode in (0, 1), run.stderr
    root = junit(report)
    cases = list(root.iter("testcase"))
    assert len(cases) == 4 and root.get("tests") == "4"
    assert all(case.get("name", "").startswith("visit 0000") for case in cases)
    # The demo cards include refusals on purpose: those visits are failures with their code.
    failed = [case.find("failure").get("message") for case in cases if case.find("failure") is not None]  # type: ignore[union-attr]
    assert root.get("failures") == str(len(failed))
    assert (run.returncode == 0) == (not failed)
    # The kiosks ran side by side: the suite's time is the run's wall time, not its visits' sum.
    suite_time = float(root.find("testsuite").get("time", "0"))  # type: ignore[union-attr]
    assert suite_time == pytest.approx(json.loads(run.stdout)["seconds"], abs=0.002)
