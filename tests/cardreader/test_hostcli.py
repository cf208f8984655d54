"""`mynacard readers|info|verify`: one clear line and a distinct exit code for each outcome."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cardreader import hostcli
from cardreader.cli import main
from cardreader.virtualcard import VirtualCard, VpcdBridge
from konbini_testkit.cards import PIN, make_card
from konbini_testkit.vpcd import VpcdSlot


@contextmanager
def card_in_reader(card: VirtualCard, slot: VpcdSlot) -> Iterator[VpcdBridge]:
    """Insert `card` into the vpcd reader once pcscd has seen it empty (pcscd takes up to
    ~0.4 s to notice the previous test's removal), and return once pcscd sees the card."""
    from cardreader.pcsc import wait_for_card, wait_for_removal

    assert wait_for_removal(slot.reader, timeout=5.0), "the reader still holds a card"
    with VpcdBridge(card, host=slot.host, port=slot.port) as bridge:
        assert wait_for_card(slot.reader, timeout=5.0), "pcscd did not see the inserted card"
        yield bridge


@pytest.fixture
def card_path(tmp_path: Path) -> Path:
    return make_card(tmp_path / "card.json")


def _verify(card: Path, pin: str, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(pin + "\n"))
    return main(["verify", "--card", str(card), "--pin-stdin"])


def test_info_shows_the_auth_certificate_and_tries_without_a_pin(
    card_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["info", "--card", str(card_path)]) == 0
    out = capsys.readouterr().out
    assert "CN=TESTONLYAUTH00000000" in out
    assert "JPKIAPICCTOKEN2" in out
    assert "auth PIN tries:     3" in out


def test_info_can_save_the_auth_certificate_for_enrolment(card_path: Path, tmp_path: Path) -> None:
    from cryptography import x509

    out = tmp_path / "auth.der"
    assert main(["info", "--card", str(card_path), "--save-certificate", str(out)]) == 0
    saved = x509.load_der_x509_certificate(out.read_bytes())
    assert saved.subject.rfc4514_string() == "CN=TESTONLYAUTH00000000,C=JP"


def test_verify_with_the_right_pin_exits_0(
    card_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _verify(card_path, PIN, monkeypatch) == 0
    assert "PIN accepted" in capsys.readouterr().out


def test_verify_with_a_wrong_pin_exits_3_with_the_tries_left(
    card_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _verify(card_path, "9999", monkeypatch) == hostcli.EXIT_WRONG_PIN
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "2 tries left" in err and "9999" not in err


def test_the_wrong_tries_are_kept_in_the_card_file_between_runs(
    card_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _verify(card_path, "0000", monkeypatch) == hostcli.EXIT_WRONG_PIN
    assert _verify(card_path, "0000", monkeypatch) == hostcli.EXIT_WRONG_PIN
    assert _verify(card_path, "0000", monkeypatch) == hostcli.EXIT_PIN_LOCKED
    assert _verify(card_path, PIN, monkeypatch) == hostcli.EXIT_PIN_LOCKED
    assert "locked" in capsys.readouterr().err


def test_a_malformed_pin_exits_2_and_costs_no_try(
    card_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _verify(card_path, "12a", monkeypatch) == 2
    assert "4 digits" in capsys.readouterr().err
    assert main(["info", "--card", str(card_path)]) == 0
    assert "auth PIN tries:     3" in capsys.readouterr().out


def test_the_pin_is_asked_without_echo_when_not_on_stdin(card_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:  # the terminal is not ours to drive
        prompts.append(prompt)
        return PIN

    monkeypatch.setattr(hostcli.getpass, "getpass", fake_getpass)
    assert main(["verify", "--card", str(card_path)]) == 0
    assert prompts and "PIN" in prompts[0]


def test_a_missing_card_file_is_one_line_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--card", str(tmp_path / "nothing.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mynacard: ") and err.count("\n") == 1


def test_without_pcscd_the_reader_error_is_one_line(tmp_path: Path) -> None:
    env = dict(os.environ, PCSCLITE_CSOCK_NAME=str(tmp_path / "no-pcscd.comm"))
    # Through main() as the `mynacard` script calls it (`python -m cardreader.cli` would load
    # cardreader.cli twice, as __main__ and as itself, and not catch the second's CliError).
    script = "import sys; from cardreader.cli import main; sys.exit(main(['readers']))"
    run = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert run.returncode == hostcli.EXIT_READER
    assert "pcscd" in run.stderr and run.stderr.count("\n") == 1 and "Traceback" not in run.stderr


# -- through pcscd ------------------------------------------------------------------------


@pytest.fixture
def inserted_reader(vpcd_slot: VpcdSlot, card_path: Path) -> Iterator[str]:

    with card_in_reader(VirtualCard(card_path), vpcd_slot):
        yield vpcd_slot.reader


@pytest.mark.pcsc
def test_readers_lists_the_vpcd_readers_and_their_cards(
    inserted_reader: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["readers"]) == 0
    assert f"{inserted_reader}\tcard present" in capsys.readouterr().out


@pytest.mark.pcsc
def test_info_and_verify_work_through_a_reader(
    inserted_reader: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["info", "--reader", inserted_reader]) == 0
    assert "CN=TESTONLYAUTH00000000" in capsys.readouterr().out
    monkeypatch.setattr(sys, "stdin", io.StringIO(PIN + "\n"))
    assert main(["verify", "--reader", inserted_reader, "--pin-stdin"]) == 0


@pytest.mark.pcsc
def test_verify_on_an_empty_reader_exits_5(
    vpcd_slot: VpcdSlot, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cardreader.pcsc import wait_for_removal

    assert wait_for_removal(vpcd_slot.reader, timeout=5.0)
    monkeypatch.setattr(sys, "stdin", io.StringIO(PIN + "\n"))
    assert main(["verify", "--reader", vpcd_slot.reader, "--pin-stdin"]) == hostcli.EXIT_NO_CARD
    assert "No card" in capsys.readouterr().err


def test_an_unknown_reader_exits_6(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(PIN + "\n"))
    code = main(["verify", "--reader", "No Such Reader 99", "--pin-stdin"])
    assert code == hostcli.EXIT_READER
    assert capsys.readouterr().err.count("\n") == 1
