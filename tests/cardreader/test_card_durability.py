"""A wrong PIN is on disk before the card answers: no crash, kill or restart gives an extra
try, and the card file is never half-written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_virtualcard_files import JPKI, Card, select_df, select_ef, verify

from konbini_common import cardfile
from konbini_common.cardfile import CardFile
from konbini_testkit.cards import PIN, make_card

REPO = Path(__file__).resolve().parents[2]

# A card in another process: reads hex APDUs from stdin, writes hex answers to stdout.
# With KILL_AFTER_ANSWER it SIGKILLs itself right after writing an answer; with
# KILL_IN_FSYNC it dies in the middle of saving the card file (after the temp file is
# written, before the rename).
CHILD = textwrap.dedent("""
    import os, signal, sys
    from konbini_common import cardfile
    from cardreader.virtualcard import VirtualCard
    card = VirtualCard(sys.argv[1])
    mode = sys.argv[2]
    if mode == "kill-in-fsync":
        def fsync_then_die(fd):
            os.kill(os.getpid(), signal.SIGKILL)
        cardfile.os.fsync = fsync_then_die
    for line in sys.stdin:
        answer = card.process(bytes.fromhex(line.strip()))
        os.write(1, (answer.hex() + "\\n").encode())
        if mode == "kill-after-answer" and answer[:1] == b"\\x63":
            os.kill(os.getpid(), signal.SIGKILL)
""")


def run_card_process(path: Path, mode: str, apdus: list[str]) -> tuple[list[str], int]:
    """Send `apdus` to a card in a child process; its answers and its exit status."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), mode],
        input="\n".join(apdus) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=REPO,
    )
    return done.stdout.split(), done.returncode


def tries_on_disk(path: Path) -> int:
    return CardFile.load(path).pins["auth"].tries_left


@pytest.fixture
def card_path(tmp_path: Path) -> Path:
    return make_card(tmp_path / "card.json")


def test_pin_lock_survives_a_process_restart(card_path: Path) -> None:
    answers, code = run_card_process(
        card_path, "plain", [select_df(JPKI), select_ef("0018"), verify("0000"), verify("0000"), verify("0000")]
    )
    assert code == 0 and answers[-3:] == ["63c2", "63c1", "63c0"]
    answers, code = run_card_process(card_path, "plain", [select_df(JPKI), select_ef("0018"), "00200080", verify(PIN)])
    assert answers[-2:] == ["63c0", "6984"]


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_a_process_killed_right_after_a_wrong_pin_answer_kept_the_count(card_path: Path, attempt: int) -> None:
    for expected in range(attempt):
        answers, code = run_card_process(
            card_path, "kill-after-answer", [select_df(JPKI), select_ef("0018"), verify("0000"), verify(PIN)]
        )
        assert code == -signal.SIGKILL
        assert answers[-1] == f"63c{2 - expected}"  # the correct PIN after it was never read
    assert tries_on_disk(card_path) == 3 - attempt


def test_a_crash_while_saving_gives_no_answer_and_leaves_the_old_file_whole(card_path: Path) -> None:
    before = card_path.read_bytes()
    answers, code = run_card_process(card_path, "kill-in-fsync", [select_df(JPKI), select_ef("0018"), verify("0000")])
    assert code == -signal.SIGKILL
    assert answers == ["9000", "9000"]  # the wrong PIN got no answer at all
    assert card_path.read_bytes() == before
    assert tries_on_disk(card_path) == 3


def test_a_failed_save_answers_a_memory_failure_not_a_count(card_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    card = Card(card_path)
    card.ok(select_df(JPKI), select_ef("0018"))
    before = card_path.read_bytes()

    def refuse(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cardfile.os, "replace", refuse)
    assert card.sw(verify("0000")) == "6581"
    assert card.sw(verify(PIN)) == "9000"  # the counter was full: nothing to write, PIN accepted
    card.ok(select_ef("0018"))
    assert card.sw(verify("0000")) == "6581"
    assert card_path.read_bytes() == before
    assert not [p for p in card_path.parent.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.undo()
    assert card.sw("00200080") == "63C3"  # what the disk holds
    assert card.sw(verify("0000")) == "63C2"
    assert tries_on_disk(card_path) == 2


def test_a_wrong_pin_and_a_right_one_look_the_same_while_the_disk_fails(
    card_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = Card(card_path)
    card.ok(select_df(JPKI), select_ef("0018"))
    assert card.sw(verify("0000")) == "63C2"

    def refuse(src: str, dst: str) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(cardfile.os, "replace", refuse)
    assert card.sw(verify("1111")) == "6581"
    assert card.sw(verify(PIN)) == "6581"  # resetting the counter could not be written either
    assert card.sw(select_ef("0017"), "802A0080020000" + "00") == "6982"  # and it was not verified


def test_a_deleted_card_file_answers_a_memory_failure(card_path: Path) -> None:
    card = Card(card_path)
    card.ok(select_df(JPKI), select_ef("0018"))
    card_path.unlink()
    assert card.sw(verify("0000")) == "6581"
    assert card.sw(verify(PIN)) == "6581"


def test_reset_pin_written_by_another_process_is_seen_by_an_inserted_card(card_path: Path) -> None:
    card = Card(card_path)
    card.ok(select_df(JPKI), select_ef("0018"))
    for _ in range(3):
        card.send(verify("0000"))
    assert card.sw(verify(PIN)) == "6984"
    record = CardFile.load(card_path)
    record.pins["auth"] = cardfile.PinRecord.new("4321", 3)
    record.save(card_path)
    assert card.sw("00200080") == "63C3"
    assert card.sw(verify("4321")) == "9000"


@pytest.mark.parametrize("answers_before_kill", [1, 2, 3, 4])
def test_killing_the_card_mid_burst_never_loses_a_count_nor_tears_the_file(
    card_path: Path, answers_before_kill: int
) -> None:
    """The card answers wrong passwords as fast as it can; it is SIGKILLed as soon as the
    k-th answer is out, usually while it saves the next one."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(card_path), "plain"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert child.stdin is not None and child.stdout is not None
    wrong = f"00200080{len('WRONG1'):02X}{b'WRONG1'.hex()}"
    child.stdin.write("\n".join([select_df(JPKI), select_ef("001B")] + [wrong] * 5) + "\n")
    child.stdin.flush()
    answers = [child.stdout.readline().strip() for _ in range(2 + answers_before_kill)]
    child.kill()
    child.wait()
    child.stdin.close()
    child.stdout.close()
    assert answers[2:] == [f"63c{5 - n}" for n in range(1, answers_before_kill + 1)]
    tries = CardFile.load(card_path).pins["sign"].tries_left  # loads: the file is whole
    # Every answer given is on disk; at most the one in flight was also counted.
    assert tries in (5 - answers_before_kill, 5 - answers_before_kill - 1)
