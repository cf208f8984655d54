"""Command and response APDUs: the encoder and the parser agree, in all four ISO cases."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardreader.apdu import ApduFormatError, CommandApdu, ResponseApdu

byte = st.integers(0, 0xFF)
short_data = st.binary(min_size=1, max_size=255)
long_data = st.binary(min_size=256, max_size=2000)


@st.composite
def commands(draw: st.DrawFn) -> CommandApdu:
    data = draw(st.one_of(st.just(b""), short_data, long_data))
    le = draw(st.one_of(st.none(), st.integers(1, 256), st.integers(257, 65536)))
    return CommandApdu(draw(byte), draw(byte), draw(byte), draw(byte), data, le)


@given(commands())
def test_every_command_survives_an_encode_decode_round_trip(apdu: CommandApdu) -> None:
    assert CommandApdu.decode(apdu.encode()) == apdu


@given(st.binary(max_size=300), byte, byte)
def test_every_response_survives_an_encode_decode_round_trip(data: bytes, sw1: int, sw2: int) -> None:
    response = ResponseApdu(data, sw1, sw2)
    assert ResponseApdu.decode(response.encode()) == response
    assert response.sw == (sw1 << 8) | sw2


@given(byte, byte, byte, byte)
def test_case_1_is_the_four_header_bytes(cla: int, ins: int, p1: int, p2: int) -> None:
    assert CommandApdu(cla, ins, p1, p2).encode() == bytes((cla, ins, p1, p2))


@given(short_data)
def test_case_3_short_carries_lc_and_no_le(data: bytes) -> None:
    raw = CommandApdu(0x00, 0xA4, 0x04, 0x0C, data).encode()
    assert raw[4] == len(data) and raw[5:] == data


@given(short_data, st.integers(1, 256))
def test_case_4_short_ends_with_le_and_256_encodes_as_zero(data: bytes, le: int) -> None:
    raw = CommandApdu(0x80, 0x2A, 0x00, 0x80, data, le).encode()
    assert len(raw) == 4 + 1 + len(data) + 1
    assert raw[-1] == le % 256


@given(long_data)
def test_data_over_255_bytes_uses_the_extended_form(data: bytes) -> None:
    raw = CommandApdu(0x00, 0xDA, 0x00, 0x00, data).encode()
    assert raw[4] == 0 and int.from_bytes(raw[5:7], "big") == len(data)


def test_the_jpki_apdus_have_the_bytes_of_the_spec() -> None:
    select_jpki = CommandApdu(0x00, 0xA4, 0x04, 0x0C, bytes.fromhex("D392F000260100000001"))
    assert select_jpki.encode().hex().upper() == "00A4040C0AD392F000260100000001"
    assert CommandApdu(0x00, 0xB0, 0x00, 0x00, le=7).encode().hex() == "00b0000007"
    assert CommandApdu(0x00, 0xB0, 0x01, 0x00, le=256).encode().hex() == "00b0010000"
    assert CommandApdu(0x00, 0x20, 0x00, 0x80).encode().hex() == "00200080"


@pytest.mark.parametrize("raw", ["", "00", "00A4", "00A404"])
def test_fewer_than_four_bytes_is_not_an_apdu(raw: str) -> None:
    with pytest.raises(ApduFormatError):
        CommandApdu.decode(bytes.fromhex(raw))


@given(st.binary(min_size=2, max_size=254), st.integers(2, 10))
def test_lc_that_disagrees_with_the_data_is_rejected(data: bytes, extra: int) -> None:
    lc = len(data) + extra
    if lc > 255:
        return
    with pytest.raises(ApduFormatError):
        CommandApdu.decode(bytes((0, 0xA4, 0, 0, lc)) + data)


@given(st.binary(min_size=1, max_size=300), st.integers(1, 5))
def test_extended_lc_that_disagrees_with_the_data_is_rejected(data: bytes, extra: int) -> None:
    header = bytes((0, 0xDA, 0, 0, 0)) + (len(data) + extra).to_bytes(2, "big")
    with pytest.raises(ApduFormatError):
        CommandApdu.decode(header + data)


def test_extended_lc_of_zero_is_rejected() -> None:
    with pytest.raises(ApduFormatError):
        CommandApdu.decode(bytes.fromhex("00DA0000000000AA"))


@given(st.integers(-1000, -1) | st.integers(256, 1000))
def test_header_bytes_out_of_range_are_rejected(value: int) -> None:
    with pytest.raises(ApduFormatError):
        CommandApdu(value, 0, 0, 0)


@pytest.mark.parametrize("le", [0, 65537])
def test_le_out_of_range_is_rejected(le: int) -> None:
    with pytest.raises(ApduFormatError):
        CommandApdu(0, 0xB0, 0, 0, le=le)


@pytest.mark.parametrize("raw", [b"", b"\x90"])
def test_a_response_without_two_status_bytes_is_rejected(raw: bytes) -> None:
    with pytest.raises(ApduFormatError):
        ResponseApdu.decode(raw)
