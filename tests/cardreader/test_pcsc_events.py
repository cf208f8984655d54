"""Card placed / removed, seen through the real pcscd + vpcd, and removal mid-session."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cardreader.apdu import CommandApdu
from cardreader.inprocess import VirtualCardTransport
from cardreader.jpki import JpkiClient
from cardreader.status import CardRemovedError, NoCardError, ReaderError, SecurityStatusError
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


READ_256 = CommandApdu(0x00, 0xB0, 0x00, 0x00, le=256)


@pytest.fixture
def card(tmp_path: Path) -> VirtualCard:
    return VirtualCard(make_card(tmp_path / "card.json"))


def test_in_process_removal_fails_commands_until_inserted_and_connected(card: VirtualCard) -> None:
    with VirtualCardTransport(card) as transport:
        client = JpkiClient(transport)
        client.verify_auth_pin(PIN)
        transport.remove()
        with pytest.raises(CardRemovedError):
            client.select_jpki()
        transport.insert()
        with pytest.raises(CardRemovedError):
            client.select_jpki()
        transport.connect()
        client.select_jpki()
        with pytest.raises(SecurityStatusError):  # the power cycle forgot the PIN
            client.sign_with_auth_key(bytes(32))


def test_in_process_connect_without_a_card_is_no_card(card: VirtualCard) -> None:
    transport = VirtualCardTransport(card)
    transport.remove()
    with pytest.raises(NoCardError):
        transport.connect()


@pytest.mark.pcsc
def test_placing_and_removing_the_card_are_seen_as_events(vpcd_slot: VpcdSlot, card: VirtualCard) -> None:
    from cardreader.pcsc import CardEvent, ReaderMonitor, wait_for_removal

    assert wait_for_removal(vpcd_slot.reader, timeout=5.0)
    with ReaderMonitor(vpcd_slot.reader) as monitor:
        assert monitor.next_event(timeout=0.3) is None  # empty reader: nothing happens
        with card_in_reader(card, vpcd_slot) as bridge:
            assert monitor.next_event(timeout=5.0) is CardEvent.PLACED
            assert monitor.card_present
            bridge.remove()
            assert monitor.next_event(timeout=5.0) is CardEvent.REMOVED
            assert not monitor.card_present


@pytest.mark.pcsc
def test_a_card_placed_before_the_screen_asks_is_seen_at_once(vpcd_slot: VpcdSlot, card: VirtualCard) -> None:
    from cardreader.pcsc import CardEvent, ReaderMonitor

    with card_in_reader(card, vpcd_slot), ReaderMonitor(vpcd_slot.reader) as monitor:
        started = time.monotonic()
        assert monitor.next_event(timeout=5.0) is CardEvent.PLACED
        assert time.monotonic() - started < 1.0


@pytest.mark.pcsc
def test_waiting_on_an_empty_reader_times_out(vpcd_slot: VpcdSlot) -> None:
    from cardreader.pcsc import wait_for_card, wait_for_removal

    assert wait_for_removal(vpcd_slot.reader, timeout=5.0)
    started = time.monotonic()
    assert not wait_for_card(vpcd_slot.reader, timeout=0.3)
    assert 0.25 <= time.monotonic() - started < 3.0


@pytest.mark.pcsc
def test_a_wait_can_be_cancelled_from_another_thread(vpcd_slot: VpcdSlot) -> None:
    from cardreader.pcsc import CardEvent, ReaderMonitor

    with ReaderMonitor(vpcd_slot.reader) as monitor:
        timer = threading.Timer(0.2, monitor.cancel)
        timer.start()
        with pytest.raises(ReaderError):
            monitor.wait_for(CardEvent.PLACED, timeout=10.0)
        timer.join()


@pytest.mark.pcsc
def test_removal_during_a_stream_of_commands_is_card_removed(vpcd_slot: VpcdSlot, card: VirtualCard) -> None:
    from cardreader.pcsc import PcscTransport

    outcome: list[BaseException] = []
    with card_in_reader(card, vpcd_slot) as bridge, PcscTransport(vpcd_slot.reader) as transport:
        JpkiClient(transport).select_jpki()
        transport.transmit(CommandApdu(0x00, 0xA4, 0x02, 0x0C, b"\x00\x0a"))
        started = threading.Event()

        def read_forever() -> None:
            try:
                while True:
                    assert transport.transmit(READ_256).ok
                    started.set()
            except BaseException as exc:  # noqa: BLE001 - the test inspects whatever ended the loop
                outcome.append(exc)

        reader = threading.Thread(target=read_forever)
        reader.start()
        assert started.wait(5.0)
        bridge.remove()
        reader.join(10.0)
        assert not reader.is_alive()
        assert len(outcome) == 1 and isinstance(outcome[0], CardRemovedError), outcome
        with pytest.raises(CardRemovedError):
            transport.transmit(READ_256)


@pytest.mark.pcsc
def test_exclusive_use_keeps_other_processes_out_and_forgets_the_pin(vpcd_slot: VpcdSlot, card: VirtualCard) -> None:
    from cardreader.pcsc import PcscTransport

    with card_in_reader(card, vpcd_slot), PcscTransport(vpcd_slot.reader) as transport:
        client = JpkiClient(transport)
        with transport.exclusive():
            client.verify_auth_pin(PIN)
            other = PcscTransport(vpcd_slot.reader)
            with pytest.raises(ReaderError):
                other.connect()
            other.close()
        with PcscTransport(vpcd_slot.reader) as after:  # shared again
            JpkiClient(after).select_jpki()
        client.select_jpki()
        with pytest.raises(SecurityStatusError):
            client.sign_with_auth_key(bytes(32))


@pytest.mark.pcsc
def test_connecting_to_an_empty_reader_is_no_card(vpcd_slot: VpcdSlot) -> None:
    from cardreader.pcsc import PcscTransport, wait_for_removal

    assert wait_for_removal(vpcd_slot.reader, timeout=5.0)
    with pytest.raises(NoCardError):
        PcscTransport(vpcd_slot.reader).connect()


def test_atr_protocols_follow_the_td_bytes() -> None:
    from cardreader.pcsc import atr_protocols

    assert atr_protocols(bytes.fromhex("3BE000FF8131FE4514")) == {1}
    assert atr_protocols(bytes.fromhex("3B88800100000005E0B381A1007F")) == {0, 1}  # contactless
    assert atr_protocols(bytes.fromhex("3B02149A")) == {0}  # no TD: T=0 implied


@pytest.mark.pcsc
def test_without_a_reader_name_the_first_reader_holding_a_card_is_used(
    vpcd_slots: list[VpcdSlot], card: VirtualCard
) -> None:
    from cardreader.pcsc import PcscTransport, wait_for_removal

    empty, holder = vpcd_slots
    assert wait_for_removal(empty.reader, timeout=5.0)
    with card_in_reader(card, holder), PcscTransport(None) as transport:
        assert transport.reader == holder.reader
        assert transport.atr == card.atr
        JpkiClient(transport).select_jpki()
