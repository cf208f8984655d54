"""The vpcd bridge through the real pcscd, seen by pyscard: insertion, removal, re-insertion,
two cards in two readers at once."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from smartcard.Exceptions import CardConnectionException, NoCardException
from smartcard.System import readers

from cardreader.status import ReaderError
from cardreader.virtualcard import VirtualCard, VpcdBridge
from konbini_testkit.cards import make_card

pytestmark = pytest.mark.pcsc

SELECT_JPKI = [0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01]
SELECT_AUTH_CERT = [0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x0A]
T = TypeVar("T")


def _eventually(action: Callable[[], T], timeout: float = 8.0) -> T:
    """Retry `action` until it stops raising (pcscd polls vpcd every ~400 ms)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return action()
        except (NoCardException, CardConnectionException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _reader(name: str):  # type: ignore[no-untyped-def]
    for reader in readers():
        if str(reader) == name:
            return reader
    raise AssertionError(f"pcscd has no reader {name!r}")


def _connect(name: str):  # type: ignore[no-untyped-def]
    connection = _reader(name).createConnection()
    connection.connect()
    return connection


def _exchange(name: str, *apdus: list[int]) -> list[tuple[bytes, int]]:
    """Connect, send `apdus`, disconnect: (data, SW) of each. Raises pyscard's errors."""
    connection = _connect(name)
    try:
        answers = []
        for apdu in apdus:
            data, sw1, sw2 = connection.transmit(apdu)
            answers.append((bytes(data), (sw1 << 8) | sw2))
        return answers
    finally:
        connection.disconnect()


def _card_present(name: str) -> bool:
    connection = _reader(name).createConnection()
    try:
        connection.connect()
    except (NoCardException, CardConnectionException):
        return False
    connection.disconnect()
    return True


def _wait_until_absent(name: str, timeout: float = 8.0) -> None:
    deadline = time.monotonic() + timeout
    while _card_present(name):
        assert time.monotonic() < deadline, "the reader still reports a card after removal"
        time.sleep(0.05)


@pytest.fixture
def card(tmp_path: Path) -> VirtualCard:
    return VirtualCard(make_card(tmp_path / "card.json"))


def test_inserted_card_shows_its_atr_and_answers_select(vpcd_slot, card: VirtualCard) -> None:  # type: ignore[no-untyped-def]
    with VpcdBridge(card, host=vpcd_slot.host, port=vpcd_slot.port) as bridge:
        assert bridge.inserted
        connection = _eventually(lambda: _connect(vpcd_slot.reader))
        assert bytes(connection.getATR()) == card.atr == bytes.fromhex("3BE000FF8131FE4514")
        connection.disconnect()
        answers = _eventually(
            lambda: _exchange(vpcd_slot.reader, SELECT_JPKI, SELECT_AUTH_CERT, [0x00, 0xB0, 0x00, 0x00, 0x04])
        )
        assert [sw for _, sw in answers] == [0x9000] * 3
        assert answers[-1][0][:2] == b"\x30\x82" and len(answers[-1][0]) == 4
    assert not bridge.inserted


def test_removed_card_is_gone_for_pyscard_and_reinsertion_works(vpcd_slot, card: VirtualCard) -> None:  # type: ignore[no-untyped-def]
    bridge = VpcdBridge(card, host=vpcd_slot.host, port=vpcd_slot.port)
    bridge.insert()
    try:
        _eventually(lambda: _connect(vpcd_slot.reader)).disconnect()
        bridge.remove()
        assert not bridge.inserted
        _wait_until_absent(vpcd_slot.reader)
        with pytest.raises((NoCardException, CardConnectionException)):
            _connect(vpcd_slot.reader)
        bridge.insert()
        assert _eventually(lambda: _exchange(vpcd_slot.reader, SELECT_JPKI)) == [(b"", 0x9000)]
    finally:
        bridge.remove()


def test_removal_clears_the_verified_pin(vpcd_slot, card: VirtualCard) -> None:  # type: ignore[no-untyped-def]
    with VpcdBridge(card, host=vpcd_slot.host, port=vpcd_slot.port) as bridge:
        answers = _eventually(
            lambda: _exchange(
                vpcd_slot.reader,
                SELECT_JPKI,
                [0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x1B],
                [0x00, 0x20, 0x00, 0x80, 6, *b"ABC123"],
                [0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x01],
                [0x00, 0xB0, 0x00, 0x00, 0x04],
            )
        )
        assert [sw for _, sw in answers] == [0x9000] * 5  # the sign certificate opened
        bridge.remove()
        _wait_until_absent(vpcd_slot.reader)
        bridge.insert()
        answers = _eventually(
            lambda: _exchange(
                vpcd_slot.reader,
                SELECT_JPKI,
                [0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x01],
                [0x00, 0xB0, 0x00, 0x00, 0x04],
            )
        )
        assert answers[-1] == (b"", 0x6982)


def test_two_cards_in_two_readers_at_once(vpcd_slots, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cards = [VirtualCard(make_card(tmp_path / f"card{i}.json", slot=i)) for i in range(2)]
    bridges = [VpcdBridge(c, host=s.host, port=s.port) for c, s in zip(cards, vpcd_slots, strict=True)]
    for bridge in bridges:
        bridge.insert()
    try:
        certs = []
        for slot in vpcd_slots:
            answers = _eventually(
                lambda slot=slot: _exchange(slot.reader, SELECT_JPKI, SELECT_AUTH_CERT, [0x00, 0xB0, 0x00, 0x00, 0x00])
            )
            assert [sw for _, sw in answers] == [0x9000] * 3
            certs.append(answers[-1][0])
        for card, cert in zip(cards, certs, strict=True):
            card.power_on()
            card.process(bytes(SELECT_JPKI))
            card.process(bytes(SELECT_AUTH_CERT))
            assert card.process(bytes.fromhex("00B0000000"))[:-2] == cert
        assert certs[0] != certs[1]
    finally:
        for bridge in bridges:
            bridge.remove()


def test_insert_without_vpcd_raises_a_reader_error(card: VirtualCard) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bridge = VpcdBridge(card, port=port)
    with pytest.raises(ReaderError, match="vsmartcard-vpcd"):
        bridge.insert(timeout=1.0)
    assert not bridge.inserted


def test_a_second_card_in_an_occupied_reader_is_refused_and_the_first_keeps_working(  # type: ignore[no-untyped-def]
    vpcd_slot, tmp_path: Path
) -> None:
    first = VirtualCard(make_card(tmp_path / "first.json"))
    second = VirtualCard(make_card(tmp_path / "second.json", slot=1))
    with VpcdBridge(first, host=vpcd_slot.host, port=vpcd_slot.port):
        intruder = VpcdBridge(second, host=vpcd_slot.host, port=vpcd_slot.port)
        with pytest.raises(ReaderError, match="another card"):
            intruder.insert(timeout=1.5)
        assert not intruder.inserted
        answers = _eventually(lambda: _exchange(vpcd_slot.reader, SELECT_JPKI))
        assert answers == [(b"", 0x9000)]
