"""The fault catalogue of the virtual card (cardreader/virtualcard/faults.py): each fault does
what it says to a host-side JPKI client, is logged with the APDU it hit and never with a PIN,
and `mynacard insert --fault` arms the same faults for PC/SC programs."""

from __future__ import annotations

import logging
import signal
import time
from pathlib import Path

import pytest
from test_mynacard_cli_card import mynacard, start_insert

from cardreader.inprocess import VirtualCardTransport
from cardreader.jpki import JpkiClient
from cardreader.status import (
    CardCommandError,
    CardRemovedError,
    SecurityStatusError,
    UnresponsiveCardError,
    WrongPinError,
)
from cardreader.virtualcard import (
    CorruptedByte,
    ForcedStatus,
    LostVerification,
    PulledOut,
    RefusesPowerOn,
    SlowAnswer,
    VirtualCard,
    parse_fault,
)
from cardreader.virtualcard.faults import FaultSpecError
from konbini_common.cardfile import CardFile
from konbini_testkit.cards import PIN, make_card
from konbini_testkit.vpcd import VpcdSlot

CHALLENGE = b"a challenge from the service"


@pytest.fixture
def card_path(tmp_path: Path) -> Path:
    return make_card(tmp_path / "card.json")


@pytest.fixture
def transport(card_path: Path) -> VirtualCardTransport:
    transport = VirtualCardTransport(VirtualCard(card_path))
    transport.connect()
    return transport


def tries_left(path: Path) -> int:
    return CardFile.load(path).pins["auth"].tries_left


@pytest.mark.parametrize(
    "spec",
    [
        "delay=0.2",
        "delay=0.1-0.5",
        "pull-after=3",
        "pull-during=1",
        "sw=6F00:read-binary",
        "sw=6581:any",
        "corrupt=sign:17",
        "forget-verified=sign",
        "no-power-on",
    ],
)
def test_a_fault_spec_reads_back_as_itself(spec: str) -> None:
    assert str(parse_fault(spec)) == spec


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "explode",
        "delay=soon",
        "delay=0.5-0.1",
        "pull-after=0",
        "sw=6F:read-binary",
        "sw=6F00:write",
        "corrupt=b0:-1",
    ],
)
def test_a_bad_fault_spec_is_refused_with_a_reason(spec: str) -> None:
    with pytest.raises(FaultSpecError):
        parse_fault(spec)


def test_a_forced_status_word_replaces_the_answer_of_that_command_only(transport: VirtualCardTransport) -> None:
    transport.card.faults.add(ForcedStatus(0x6581, "read-binary"))
    client = JpkiClient(transport)
    client.select_jpki()  # other commands still pass
    with pytest.raises(CardCommandError) as raised:
        client.read_auth_certificate()
    assert raised.value.sw == 0x6581


def test_6982_on_a_read_that_should_pass_is_a_security_status_error(transport: VirtualCardTransport) -> None:
    transport.card.faults.add(ForcedStatus(0x6982, "read-binary", times=1))
    client = JpkiClient(transport)
    with pytest.raises(SecurityStatusError):
        client.read_auth_certificate()
    assert client.read_auth_certificate()  # times=1: the next read passes


def test_a_corrupted_byte_changes_one_byte_of_each_answer_it_hits(
    transport: VirtualCardTransport, card_path: Path
) -> None:
    genuine = CardFile.load(card_path).auth_certificate
    transport.card.faults.add(CorruptedByte("read-binary", 200))
    read = JpkiClient(transport).read_auth_certificate()
    assert len(read) == len(genuine)
    changed = [i for i in range(len(read)) if read[i] != genuine[i]]
    assert len(changed) == len(transport.card.faults.hits) > 1
    assert all(read[i] == genuine[i] ^ 0xFF for i in changed)


def test_pulled_out_after_the_nth_apdu_answers_it_then_is_gone(transport: VirtualCardTransport) -> None:
    transport.card.faults.add(PulledOut(after=2))
    client = JpkiClient(transport)
    client.select_jpki()
    client._select_ef(0x000A)  # the 2nd APDU: answered
    assert not transport.inserted
    with pytest.raises(CardRemovedError):
        client.read_auth_certificate()


def test_pulled_out_during_a_wrong_verify_still_counts_the_try(
    transport: VirtualCardTransport, card_path: Path
) -> None:
    client = JpkiClient(transport)
    transport.card.faults.add(PulledOut(during=3))  # select JPKI AP, select EF 0018, VERIFY
    with pytest.raises(CardRemovedError):
        client.verify_auth_pin("9999" if PIN != "9999" else "0000")
    assert tries_left(card_path) == 2, "the card counts the wrong PIN before it would answer"


def test_a_lost_verified_state_makes_the_signature_fail(transport: VirtualCardTransport) -> None:
    transport.card.faults.add(LostVerification("sign"))
    with pytest.raises(SecurityStatusError):
        JpkiClient(transport).authenticate(PIN, CHALLENGE)


def test_a_card_that_refuses_to_power_on_cannot_be_connected(card_path: Path) -> None:
    card = VirtualCard(card_path)
    card.faults.add(RefusesPowerOn())
    card.power_off()
    transport = VirtualCardTransport(card)
    with pytest.raises(UnresponsiveCardError):
        transport.connect()
    card.faults.clear()
    transport.connect()
    assert transport.atr == card.atr


def test_slow_answers_wait_the_delay_for_each_apdu(transport: VirtualCardTransport) -> None:
    transport.card.faults.add(SlowAnswer(0.02))
    began = time.monotonic()
    JpkiClient(transport).authenticate(PIN, CHALLENGE)
    apdus = len(transport.card.faults.hits)
    assert apdus >= 5
    assert time.monotonic() - began >= apdus * 0.02


def test_random_delays_repeat_with_the_same_seed(card_path: Path) -> None:
    from cardreader.virtualcard.faults import FaultPlan

    rolls = []
    for _ in range(2):
        plan = FaultPlan(seed=7).add(SlowAnswer(0, 0.001))
        rolls.append([plan._rng.random() for _ in range(3)])
    assert rolls[0] == rolls[1]


def test_each_fault_is_logged_with_its_apdu_and_never_with_the_pin(
    transport: VirtualCardTransport, caplog: pytest.LogCaptureFixture
) -> None:
    transport.card.faults.add(ForcedStatus(0x6F00, "verify", times=1), CorruptedByte("sign"))
    client = JpkiClient(transport)
    with caplog.at_level(logging.WARNING, logger="cardreader.virtualcard.faults"):
        with pytest.raises(CardCommandError):
            client.verify_auth_pin(PIN)
        client.authenticate(PIN, CHALLENGE)
    assert "card fault sw=6F00:verify hit APDU 00 20 00 80 (9 bytes)" in caplog.text
    assert "card fault corrupt=sign:0 hit APDU 80 2A 00 80" in caplog.text
    pin_hex = PIN.encode().hex()
    assert PIN not in caplog.text and pin_hex not in caplog.text.replace(" ", "").lower()
    assert [hit.fault for hit in transport.card.faults.hits] == ["sw=6F00:verify", "corrupt=sign:0"]


def test_wrong_pin_answers_are_not_faults(transport: VirtualCardTransport) -> None:
    """An armed fault that does not match leaves the card's own answers alone."""
    transport.card.faults.add(ForcedStatus(0x6581, "read-record"))
    with pytest.raises(WrongPinError):
        JpkiClient(transport).verify_auth_pin("0000" if PIN != "0000" else "1111")
    assert not transport.card.faults.hits


# -- mynacard insert --fault -------------------------------------------------------------


def test_mynacard_insert_refuses_a_bad_fault_in_one_line(card_path: Path) -> None:
    run = mynacard("insert", str(card_path), "--fault", "sw=6F00:write")
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "--fault" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.pcsc
def test_mynacard_insert_with_a_fault_serves_a_misbehaving_card_to_pcsc(vpcd_slot: VpcdSlot, card_path: Path) -> None:
    from cardreader.pcsc import PcscTransport, wait_for_card, wait_for_removal

    assert wait_for_removal(vpcd_slot.reader, timeout=5.0)
    process = start_insert(str(card_path), "--port", str(vpcd_slot.port), "--fault", "sw=6581:read-binary")
    try:
        assert process.stdout is not None
        assert "inserted" in process.stdout.readline()
        assert wait_for_card(vpcd_slot.reader, timeout=5.0)
        with PcscTransport(vpcd_slot.reader) as pcsc, pytest.raises(CardCommandError) as raised:
            JpkiClient(pcsc).read_auth_certificate()
        assert raised.value.sw == 0x6581
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "card fault sw=6581:read-binary hit APDU 00 B0 00 00 (5 bytes)" in stderr


@pytest.mark.pcsc
def test_mynacard_insert_pulled_out_by_a_fault_goes_back_in_on_sigusr1(vpcd_slot: VpcdSlot, card_path: Path) -> None:
    from cardreader.pcsc import PcscTransport, wait_for_card, wait_for_removal

    assert wait_for_removal(vpcd_slot.reader, timeout=5.0)
    process = start_insert(str(card_path), "--port", str(vpcd_slot.port), "--fault", "pull-after=1")
    try:
        assert process.stdout is not None
        assert "inserted" in process.stdout.readline()
        assert wait_for_card(vpcd_slot.reader, timeout=5.0)
        with PcscTransport(vpcd_slot.reader) as pcsc:
            JpkiClient(pcsc).select_jpki()  # the 1st APDU: answered, then the card is out
        assert "pulled out" in process.stdout.readline()
        assert wait_for_removal(vpcd_slot.reader, timeout=5.0)
        process.send_signal(signal.SIGUSR1)
        assert "inserted" in process.stdout.readline()
        assert wait_for_card(vpcd_slot.reader, timeout=5.0)
        with PcscTransport(vpcd_slot.reader) as pcsc:
            assert JpkiClient(pcsc).read_auth_certificate()  # the fault fired once
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert process.returncode == 0
