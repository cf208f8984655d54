"""The JPKI client, run against every transport: the virtual card in this process, and the
same card through pcscd + vpcd + pyscard (one parametrised fixture, `jpki_transport`)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given
from hypothesis import strategies as st

from cardreader.inprocess import VirtualCardTransport
from cardreader.jpki import (
    BasicFour,
    CardDataError,
    JpkiClient,
    PinFormatError,
    parse_basic_four,
    parse_ber_header,
    sha256_digest_info,
)
from cardreader.status import PinLockedError, SecurityStatusError, WrongPinError
from cardreader.transport import Transport
from cardreader.virtualcard import VirtualCard, VpcdBridge
from konbini_common.cardfile import CardFile
from konbini_testkit.cards import PASSWORD, PIN, make_card
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


@pytest.fixture(params=["inprocess", pytest.param("pcsc", marks=pytest.mark.pcsc)])
def jpki_transport(request: pytest.FixtureRequest, card_path: Path) -> Iterator[Transport]:
    """A connected transport to a fresh virtual card, once per kind of transport."""
    card = VirtualCard(card_path)
    if request.param == "inprocess":
        with VirtualCardTransport(card) as transport:
            yield transport
        return
    from cardreader.pcsc import PcscTransport

    slot = request.getfixturevalue("vpcd_slot")
    with card_in_reader(card, slot), PcscTransport(slot.reader) as transport:
        yield transport


@pytest.fixture
def client(jpki_transport: Transport) -> JpkiClient:
    return JpkiClient(jpki_transport)


def _public_key(der: bytes) -> rsa.RSAPublicKey:
    key = x509.load_der_x509_certificate(der).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    return key


# -- reading ----------------------------------------------------------------------------


def test_the_token_label_is_that_of_a_physical_card(client: JpkiClient) -> None:
    assert client.read_token_label() == "JPKIAPICCTOKEN2"


def test_the_auth_certificate_read_is_the_one_in_the_card_file(client: JpkiClient, card_path: Path) -> None:
    assert client.read_auth_certificate() == CardFile.load(card_path).auth_certificate


def test_the_auth_ca_certificate_read_is_the_one_in_the_card_file(client: JpkiClient, card_path: Path) -> None:
    assert client.read_auth_ca_certificate() == CardFile.load(card_path).auth_ca_certificate


def test_a_fresh_card_has_three_auth_pin_tries_and_five_password_tries(client: JpkiClient) -> None:
    assert client.auth_pin_tries_left() == 3
    assert client.sign_password_tries_left() == 5


# -- the auth PIN -------------------------------------------------------------------------


def test_signing_without_the_pin_is_refused(client: JpkiClient) -> None:
    client.select_jpki()
    with pytest.raises(SecurityStatusError):
        client.sign_with_auth_key(hashlib.sha256(b"challenge").digest())


def test_after_the_right_pin_the_auth_key_signs_a_verifiable_signature(client: JpkiClient) -> None:
    cert = client.read_auth_certificate()
    client.verify_auth_pin(PIN)
    digest = hashlib.sha256(b"challenge").digest()
    signature = client.sign_with_auth_key(digest)
    assert len(signature) == 256
    _public_key(cert).verify(signature, b"challenge", padding.PKCS1v15(), hashes.SHA256())


def test_a_wrong_pin_costs_one_try_and_the_right_one_restores_them(client: JpkiClient) -> None:
    with pytest.raises(WrongPinError) as caught:
        client.verify_auth_pin("9999")
    assert caught.value.tries_left == 2
    assert client.auth_pin_tries_left() == 2
    client.verify_auth_pin(PIN)
    assert client.auth_pin_tries_left() == 3


def test_three_wrong_pins_lock_the_pin_even_against_the_right_one(client: JpkiClient) -> None:
    for expected in (2, 1):
        with pytest.raises(WrongPinError) as caught:
            client.verify_auth_pin("0000")
        assert caught.value.tries_left == expected
    with pytest.raises(PinLockedError):
        client.verify_auth_pin("0000")
    assert client.auth_pin_tries_left() == 0
    with pytest.raises(PinLockedError):
        client.verify_auth_pin(PIN)
    with pytest.raises(PinLockedError):
        client.authenticate(PIN, b"challenge")


@pytest.mark.parametrize("bad", ["123", "12345", "12a4", "", "１２３４", "12 4"])
def test_a_malformed_pin_is_refused_before_reaching_the_card(client: JpkiClient, bad: str) -> None:
    with pytest.raises(PinFormatError) as caught:
        client.verify_auth_pin(bad)
    if bad.strip():
        assert bad not in str(caught.value)
    assert client.auth_pin_tries_left() == 3


def test_authenticate_gives_the_certificate_and_a_signature_over_the_challenge(
    client: JpkiClient, card_path: Path
) -> None:
    challenge = bytes(range(32))
    result = client.authenticate(PIN, challenge)
    assert result.certificate == CardFile.load(card_path).auth_certificate
    _public_key(result.certificate).verify(result.signature, challenge, padding.PKCS1v15(), hashes.SHA256())


def test_authenticate_with_a_wrong_pin_signs_nothing(client: JpkiClient) -> None:
    with pytest.raises(WrongPinError):
        client.authenticate("4321", b"challenge")
    assert client.auth_pin_tries_left() == 2


# -- the sign password ------------------------------------------------------------------


def test_the_sign_certificate_opens_with_the_password_in_any_case(client: JpkiClient, card_path: Path) -> None:
    assert client.read_sign_certificate(PASSWORD.lower()) == CardFile.load(card_path).sign_certificate


def test_the_sign_key_signs_after_the_password(client: JpkiClient) -> None:
    cert = client.read_sign_certificate(PASSWORD)
    signature = client.sign_with_sign_key(hashlib.sha256(b"document").digest())
    _public_key(cert).verify(signature, b"document", padding.PKCS1v15(), hashes.SHA256())


def test_a_wrong_password_costs_one_of_five_tries(client: JpkiClient) -> None:
    with pytest.raises(WrongPinError) as caught:
        client.verify_sign_password("WRONG1")
    assert caught.value.tries_left == 4


@pytest.mark.parametrize("bad", ["ABC12", "A" * 17, "ABC-123", "ＡＢＣ１２３"])
def test_a_malformed_password_is_refused_before_reaching_the_card(client: JpkiClient, bad: str) -> None:
    with pytest.raises(PinFormatError):
        client.verify_sign_password(bad)
    assert client.sign_password_tries_left() == 5


# -- 券面事項入力補助AP ------------------------------------------------------------------


def test_my_number_is_read_with_the_card_info_pin(client: JpkiClient, card_path: Path) -> None:
    assert client.read_my_number(PIN) == CardFile.load(card_path).kenhojo.my_number


def test_the_basic_four_items_are_read_with_the_card_info_pin(client: JpkiClient, card_path: Path) -> None:
    expected = CardFile.load(card_path).kenhojo
    four = client.read_basic_four(PIN)
    assert (four.name, four.address, four.birth_date, four.sex) == (
        expected.name,
        expected.address,
        expected.birth_date,
        expected.sex,
    )
    assert expected.name not in repr(four)


# -- the trace never holds a secret --------------------------------------------------------


def test_the_debug_trace_never_contains_the_pin_or_password(
    client: JpkiClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="cardreader")
    client.authenticate(PIN, b"challenge")
    client.verify_sign_password(PASSWORD)
    with pytest.raises(WrongPinError):
        client.verify_auth_pin("9876")
    text = caplog.text
    assert "redacted 4 bytes" in text and "redacted 6 bytes" in text
    for secret in (PIN, PASSWORD, "9876"):
        for form in (secret, secret.encode().hex(), secret.encode().hex(" ").upper(), secret.encode().hex().upper()):
            assert form not in text


# -- exact bytes (the same code must drive a real card) -------------------------------------


class RecordingTransport(Transport):
    """Our in-process transport, with every command's bytes kept for inspection."""

    def __init__(self, inner: VirtualCardTransport) -> None:
        self.inner = inner
        self.sent: list[str] = []

    @property
    def atr(self) -> bytes:
        return self.inner.atr

    def connect(self) -> None:
        self.inner.connect()

    def disconnect(self) -> None:
        self.inner.disconnect()

    def _transmit_raw(self, command: bytes) -> bytes:
        self.sent.append(command.hex().upper())
        return self.inner._transmit_raw(command)


def test_the_user_authentication_sends_exactly_the_apdus_of_the_spec(card_path: Path) -> None:
    with RecordingTransport(VirtualCardTransport.from_path(card_path)) as transport:
        challenge = b"kiosk challenge"
        JpkiClient(transport).authenticate(PIN, challenge)
    cert_len = len(CardFile.load(card_path).auth_certificate)
    reads = []
    offset = 7
    while offset < cert_len:
        size = min(256, cert_len - offset)
        reads.append(f"00B0{offset:04X}{size % 256:02X}")
        offset += size
    digest_info = sha256_digest_info(hashlib.sha256(challenge).digest()).hex().upper()
    assert transport.sent == [
        "00A4040C0AD392F000260100000001",
        "00A4020C02000A",
        "00B0000007",
        *reads,
        "00A4020C020018",
        "00200080",
        "0020008004" + PIN.encode().hex().upper(),
        "00A4020C020017",
        "802A008033" + digest_info + "00",
    ]


# -- BER and the card-info data formats (pure) -----------------------------------------------


@given(st.integers(0, 0xFFFF), st.sampled_from([0x30, 0xDF22, 0xFF20]))
def test_ber_headers_in_every_length_form_are_parsed(length: int, tag: int) -> None:
    tag_bytes = tag.to_bytes(2 if tag > 0xFF else 1, "big")
    forms = [b"\x82" + length.to_bytes(2, "big")]
    if length < 0x100:
        forms.append(b"\x81" + bytes((length,)))
    if length < 0x80:
        forms.append(bytes((length,)))
    for form in forms:
        assert parse_ber_header(tag_bytes + form + b"\x00" * 4) == (tag, len(tag_bytes) + len(form), length)


@pytest.mark.parametrize("raw", ["", "30", "3082", "308201", "3080", "DF"])
def test_truncated_or_indefinite_ber_headers_are_card_data_errors(raw: str) -> None:
    with pytest.raises(CardDataError):
        parse_ber_header(bytes.fromhex(raw))


def _tlv(tag: bytes, value: bytes, *, long_form: bool = False) -> bytes:
    if long_form or len(value) > 0xFF:
        return tag + b"\x82" + len(value).to_bytes(2, "big") + value
    if len(value) >= 0x80:
        return tag + b"\x81" + bytes((len(value),)) + value
    return tag + bytes((len(value),)) + value


@given(st.text(min_size=1, max_size=60), st.text(min_size=1, max_size=120), st.booleans())
def test_basic_four_parses_short_and_long_length_forms(name: str, address: str, long_form: bool) -> None:
    body = (
        _tlv(b"\xdf\x21", bytes(8))
        + _tlv(b"\xdf\x22", name.encode(), long_form=long_form)
        + _tlv(b"\xdf\x23", address.encode(), long_form=long_form)
        + _tlv(b"\xdf\x24", b"19800217")
        + _tlv(b"\xdf\x25", b"2")
    )
    raw = _tlv(b"\xff\x20", body, long_form=True) + b"\xff\xff"
    assert parse_basic_four(raw) == BasicFour(name, address, "19800217", "2")


def test_basic_four_without_ff20_is_a_card_data_error() -> None:
    with pytest.raises(CardDataError):
        parse_basic_four(_tlv(b"\xff\x10", b"123456789018"))


def test_a_digest_that_is_not_sha256_is_refused() -> None:
    with pytest.raises(ValueError):
        sha256_digest_info(b"\x00" * 20)


def test_the_client_keeps_nothing_but_its_transport(card_path: Path) -> None:
    with VirtualCardTransport.from_path(card_path) as transport:
        client = JpkiClient(transport)
        client.authenticate(PIN, b"x")
        assert list(vars(client)) == ["transport"]


def test_a_change_reference_data_is_traced_without_its_new_pin() -> None:
    from cardreader.apdu import CommandApdu
    from cardreader.transport import describe_command

    line = describe_command(CommandApdu(0x00, 0x24, 0x01, 0x80, b"5678"))
    assert line == "00 24 01 80 <redacted 4 bytes>"
