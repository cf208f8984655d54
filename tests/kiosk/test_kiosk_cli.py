"""`kiosk simulate` and `kiosk load` against the real service on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from servicekit import Service

from certserver.services.kiosks import register_kiosk
from kiosk.cli import main
from kiosk.load import Progress


def simulate(service: Service, capsys: pytest.CaptureFixture[str], pin: str, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    """`kiosk simulate` in this process, its secrets in the environment (never in argv)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KIOSK_SECRET", service.kiosk_secret)
        env.setenv("KIOSK_PIN", pin)
        code = main(["simulate", "--server", service.url, "--kiosk-id", service.kiosk_id, *args])
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out
    return code, json.loads(out[0])


def test_simulate_prints_one_json_object_for_an_issued_certificate(
    service: Service, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = service.card("toride-0001")
    code, result = simulate(
        service,
        capsys,
        card.pin,
        "--card",
        str(card.path),
        "--certificate",
        "juminhyo",
        "--persons",
        "self",
        "--options",
        "setainushi",
        "--copies",
        "2",
        "--pay",
        "1000",
        "--out",
        str(tmp_path / "out"),
    )
    assert code == 0
    assert result["status"] == "issued" and result["error_code"] is None
    assert result["paid"] == 1000 and result["change"] == 1000 - result["fee"]
    assert len(result["documents"]) == 2 and all(Path(p).is_file() for p in result["documents"])
    assert result["transaction_id"]


def test_simulate_reports_a_wrong_pin_with_the_tries_left(
    service: Service, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = service.card("toride-0003")
    wrong = "0000" if card.pin != "0000" else "1111"
    code, result = simulate(service, capsys, wrong, "--card", str(card.path), "--out", str(tmp_path))
    assert code == 1
    assert result["status"] == "error" and result["error_code"] == "wrong_pin" and result["tries_left"] == 2
    assert result["documents"] == []


def test_simulate_reports_why_a_certificate_is_not_on_offer(
    service: Service, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = service.card("toride-0050")  # seal registration cancelled
    code, result = simulate(
        service, capsys, card.pin, "--card", str(card.path), "--certificate", "inkan", "--out", str(tmp_path / "out")
    )
    assert code == 1 and result["error_code"] == "seal_cancelled"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("card_id", "error_code"),
    [
        ("toride-0004", "under_15"),
        ("toride-0030", "resident_moved_out"),
        ("toride-0060", "change_pending"),
        ("toride-0070", "gaiji_in_record"),
        ("toride-0040", "not_available_at_kiosk"),  # a DV support measure: never named to the kiosk
    ],
)
def test_simulate_reports_the_rule_that_refuses_the_card_holder_not_a_service_error(
    service: Service, tmp_path: Path, capsys: pytest.CaptureFixture[str], card_id: str, error_code: str
) -> None:
    card = service.card(card_id)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KIOSK_SECRET", service.kiosk_secret)
        env.setenv("KIOSK_PIN", card.pin)
        code = main(
            [
                "simulate",
                "--server",
                service.url,
                "--kiosk-id",
                service.kiosk_id,
                "--card",
                str(card.path),
                "--out",
                str(tmp_path / "out"),
            ]
        )
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert code == 1 and result["status"] == "error" and result["error_code"] == error_code
    assert "dv_support" not in captured.out + captured.err


def test_simulate_reports_a_pending_honseki_registration_by_its_rule(
    service: Service, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = service.card("toride-0002")  # 本籍地 利用登録 not effective yet
    code, result = simulate(
        service,
        capsys,
        card.pin,
        "--card",
        str(card.path),
        "--municipality",
        "honsekichi",
        "--certificate",
        "koseki_zenbu",
        "--out",
        str(tmp_path / "out"),
    )
    assert code == 1 and result["error_code"] == "honseki_registration_pending"


def test_simulate_with_bad_input_prints_one_line_and_exits_2(
    service: Service, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = service.card("toride-0001")
    monkeypatch.setenv("KIOSK_SECRET", "x")
    monkeypatch.setenv("KIOSK_PIN", "12ab")
    code = main(["simulate", "--server", service.url, "--kiosk-id", service.kiosk_id, "--card", str(card.path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["kiosk: the PIN must be 4 digits"]
    monkeypatch.setenv("KIOSK_PIN", "1234")
    code = main(["simulate", "--server", service.url, "--card", str(tmp_path / "missing.json"), "--kiosk-id", "a"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "missing.json" in err[0]


def test_simulate_against_an_unreachable_service_reports_it(
    service: Service, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    card = service.card("toride-0001")
    monkeypatch.setenv("KIOSK_SECRET", "s")
    monkeypatch.setenv("KIOSK_PIN", card.pin)
    code = main(
        [
            "simulate",
            "--server",
            "http://127.0.0.1:9",
            "--kiosk-id",
            "k",
            "--card",
            str(card.path),
            "--out",
            str(tmp_path),
        ]
    )
    result = json.loads(capsys.readouterr().out)
    assert code == 1 and result["error_code"] == "service_unreachable"


@pytest.mark.slow
def test_load_of_20_kiosks_and_200_transactions_prints_no_wrong_person_document(
    service: Service, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = []

    def add_kiosks(session) -> None:  # type: ignore[no-untyped-def]
        for number in range(20):
            credential = register_kiosk(session, f"LOAD-{number:02d}", "負荷試験店", dt.datetime.now(dt.UTC))
            lines.append(f"KIOSK_CREDENTIAL={credential.kiosk_id}:{credential.secret}")

    service.change(add_kiosks)
    credentials = tmp_path / "credentials.txt"
    credentials.write_text("\n".join(lines) + "\n")
    code = main(
        [
            "load",
            "--server",
            service.url,
            "--credentials",
            str(credentials),
            "--kiosks",
            "20",
            "--transactions",
            "200",
            "--cards",
            str(service.data_dir / "cards"),
            "--json",
        ]
    )
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    # Not a terminal: plain periodic lines, no bar redrawn with carriage returns.
    assert "\r" not in captured.err
    assert [line for line in captured.err.splitlines() if line.startswith("kiosk load:")][-1] == (
        "kiosk load: 200/200 visits (100%)"
    )
    assert report["transactions"] == 200
    assert report["issued"] == 200, report["error_codes"]
    assert report["documents_checked"] == 200
    assert report["wrong_person_documents"] == 0
    assert code == 0


def test_credentials_can_come_from_the_environment_as_certserver_prints_them(
    service: Service, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIOSK_CREDENTIAL", f"{service.kiosk_id}:{service.kiosk_secret}")
    monkeypatch.setenv("KIOSK_SERVER_URL", service.url)
    card = service.card("toride-0001")
    monkeypatch.setenv("KIOSK_PIN", card.pin)
    code = main(["simulate", "--card", str(card.path), "--certificate", "inkan", "--out", str(tmp_path / "out")])
    assert code == 0 and json.loads(capsys.readouterr().out)["status"] == "issued"


def test_run_without_a_credential_prints_one_line_and_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("KIOSK_ID", "KIOSK_SECRET", "KIOSK_CREDENTIAL", "KIOSK_KIOSK_ID", "KIOSK_KIOSK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    code = main(["run", "--server", "http://127.0.0.1:9", "--reader", "virtual:missing.json"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "credential" in err[0]


def test_load_refuses_fewer_credentials_than_kiosks(
    service: Service, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    credentials = tmp_path / "one.txt"
    credentials.write_text(f"{service.kiosk_id}:{service.kiosk_secret}\n")
    code = main(
        [
            "load",
            "--server",
            service.url,
            "--credentials",
            str(credentials),
            "--kiosks",
            "3",
            "--transactions",
            "3",
            "--cards",
            str(service.data_dir / "cards"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "3 kiosks need 3 credentials" in err[0]


def test_simulate_with_chosen_persons_prints_exactly_them(
    service: Service, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pypdf import PdfReader

    card, spouse = service.card("toride-0001"), service.card("toride-0002")  # one household
    code, result = simulate(
        service,
        capsys,
        card.pin,
        "--card",
        str(card.path),
        "--persons",
        f"{card.resident_id},{spouse.resident_id}",
        "--out",
        str(tmp_path / "out"),
    )
    assert code == 0, result
    text = "".join("".join((p.extract_text() or "").split()) for p in PdfReader(result["documents"][0]).pages)
    assert "".join(card.name.split()) in text and "".join(spouse.name.split()) in text
    others = [c for c in service.cards.values() if c.resident_id not in (card.resident_id, spouse.resident_id)]
    assert not [c.name for c in others if "".join(c.name.split()) in text]


def test_simulate_refuses_a_person_not_on_the_menu(
    service: Service, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = service.card("toride-0001")
    code, result = simulate(
        service, capsys, card.pin, "--card", str(card.path), "--persons", "toride-0010", "--out", str(tmp_path / "out")
    )
    assert code == 1 and result["error_code"] == "bad_persons"


def test_load_progress_is_a_bar_redrawn_in_place_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    progress = Progress(terminal, 100)
    for _ in range(100):
        progress.step()
    assert terminal.getvalue().count("\r[") == 50
    assert terminal.getvalue().endswith("\r[" + "#" * 30 + "] 100/100\n")
