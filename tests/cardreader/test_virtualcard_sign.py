"""COMPUTE DIGITAL SIGNATURE (80 2A) on the virtual card: signatures verify with the
certificate's public key (jpki.md §5, §12 item 8)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from test_virtualcard_files import JPKI, Card, select_df, select_ef, verify

from konbini_common.cardfile import CardFile
from konbini_testkit.cards import PASSWORD, PIN, make_card

SHA256_DIGEST_INFO_PREFIX = bytes.fromhex("3031300D060960864801650304020105000420")


def sign_apdu(data: bytes, p1: int = 0x00, p2: int = 0x80) -> str:
    return f"802A{p1:02X}{p2:02X}{len(data):02X}{data.hex()}00"


def public_key(path: Path, which: str) -> rsa.RSAPublicKey:
    record = CardFile.load(path)
    der = record.auth_certificate if which == "auth" else record.sign_certificate
    assert der is not None
    key = x509.load_der_x509_certificate(der).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    return key


@pytest.fixture
def card_path(tmp_path: Path) -> Path:
    return make_card(tmp_path / "card.json")


@pytest.fixture
def card(card_path: Path) -> Card:
    return Card(card_path)


@pytest.mark.parametrize(
    "which, pin_ef, key_ef, secret", [("auth", "0018", "0017", PIN), ("sign", "001B", "001A", PASSWORD)]
)
def test_signature_over_a_digest_info_verifies_with_the_certificate(
    card: Card, card_path: Path, which: str, pin_ef: str, key_ef: str, secret: str
) -> None:
    message = b"konbini-kiosk authentication challenge"
    digest_info = SHA256_DIGEST_INFO_PREFIX + hashlib.sha256(message).digest()
    signature = card.ok(select_df(JPKI), select_ef(pin_ef), verify(secret), select_ef(key_ef), sign_apdu(digest_info))
    assert len(signature) == 256
    public_key(card_path, which).verify(signature, message, padding.PKCS1v15(), hashes.SHA256())


def test_data_is_padded_as_given_not_hashed(card: Card, card_path: Path) -> None:
    data = b"\x01\x02\x03 raw data, no DigestInfo"
    signature = card.ok(select_df(JPKI), select_ef("0018"), verify(PIN), select_ef("0017"), sign_apdu(data))
    key = public_key(card_path, "auth")
    numbers = key.public_numbers()
    block = pow(int.from_bytes(signature, "big"), numbers.e, numbers.n).to_bytes(256, "big")
    assert block == b"\x00\x01" + b"\xff" * (256 - 3 - len(data)) + b"\x00" + data


@pytest.mark.parametrize(
    "data",
    [
        SHA256_DIGEST_INFO_PREFIX + hashlib.sha256(b"a").digest(),  # a DigestInfo
        SHA256_DIGEST_INFO_PREFIX[:-1] + b"\x21" + hashlib.sha256(b"a").digest() + b"!",  # almost one
        b"\x30" * 245,  # the longest input
    ],
)
def test_signature_is_the_textbook_rsa_of_the_padded_data(card: Card, card_path: Path, data: bytes) -> None:
    key = serialization.load_pem_private_key(CardFile.load(card_path).auth_private_key, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    numbers = key.private_numbers()
    block = b"\x00\x01" + b"\xff" * (256 - 3 - len(data)) + b"\x00" + data
    expected = pow(int.from_bytes(block, "big"), numbers.d, numbers.public_numbers.n).to_bytes(256, "big")
    assert card.ok(select_df(JPKI), select_ef("0018"), verify(PIN), select_ef("0017"), sign_apdu(data)) == expected


def test_signing_needs_the_keys_own_pin(card: Card) -> None:
    digest_info = SHA256_DIGEST_INFO_PREFIX + bytes(32)
    assert card.sw(select_df(JPKI), select_ef("0017"), sign_apdu(digest_info)) == "6982"
    card.ok(select_ef("001B"), verify(PASSWORD))
    assert card.sw(select_ef("0017"), sign_apdu(digest_info)) == "6982"
    card.ok(select_ef("0018"), verify(PIN))
    assert card.sw(select_ef("0017"), sign_apdu(digest_info)) == "9000"


def test_several_signatures_after_one_verify(card: Card) -> None:
    card.ok(select_df(JPKI), select_ef("001B"), verify(PASSWORD), select_ef("001A"))
    signatures = {card.ok(sign_apdu(SHA256_DIGEST_INFO_PREFIX + bytes([i]) * 32)) for i in range(3)}
    assert len(signatures) == 3


def test_key_named_by_short_ef_id_gives_the_same_signature(card: Card) -> None:
    digest_info = SHA256_DIGEST_INFO_PREFIX + hashlib.sha256(b"x").digest()
    card.ok(select_df(JPKI), select_ef("0018"), verify(PIN))
    by_sfi = card.ok(select_ef("000A"), sign_apdu(digest_info, p2=0x97))
    by_current = card.ok(select_ef("0017"), sign_apdu(digest_info))
    assert by_sfi == by_current


def test_signature_survives_reselecting_the_application_between_verify_and_sign(card: Card) -> None:
    """pyjpki re-selects the DF before every operation."""
    card.ok(select_df(JPKI), select_ef("0018"), verify(PIN))
    assert card.sw(select_df(JPKI), select_ef("0017"), sign_apdu(SHA256_DIGEST_INFO_PREFIX + bytes(32))) == "9000"


@pytest.mark.parametrize("p1", [0x01, 0x02, 0x03, 0x04, 0x05])
def test_other_signature_schemes_verify(card: Card, card_path: Path, p1: int) -> None:
    message = b"scheme test"
    digest = hashlib.sha256(message).digest()
    data = digest if p1 in (0x02, 0x04) else message
    signature = card.ok(select_df(JPKI), select_ef("0018"), verify(PIN), select_ef("0017"), sign_apdu(data, p1))
    key = public_key(card_path, "auth")
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    if p1 == 0x01:  # the bare hash, PKCS#1 v1.5 without DigestInfo
        numbers = key.public_numbers()
        block = pow(int.from_bytes(signature, "big"), numbers.e, numbers.n).to_bytes(256, "big")
        assert block.endswith(b"\x00" + digest) and block.startswith(b"\x00\x01\xff")
    elif p1 in (0x02, 0x03):
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    else:
        key.verify(signature, digest, pss, utils.Prehashed(hashes.SHA256()))


def test_a_signature_with_the_wrong_key_does_not_verify(card: Card, card_path: Path) -> None:
    message = b"m"
    digest_info = SHA256_DIGEST_INFO_PREFIX + hashlib.sha256(message).digest()
    signature = card.ok(select_df(JPKI), select_ef("001B"), verify(PASSWORD), select_ef("001A"), sign_apdu(digest_info))
    with pytest.raises(InvalidSignature):
        public_key(card_path, "auth").verify(signature, message, padding.PKCS1v15(), hashes.SHA256())


@pytest.mark.parametrize(
    "apdu, sw",
    [
        (sign_apdu(b"\x00" * 246), "6700"),  # more than k - 11 bytes
        ("802A008000", "6700"),  # no data
        (sign_apdu(bytes(31), p1=0x02), "6700"),  # scheme 02 takes exactly 32 bytes
        (sign_apdu(bytes(51), p1=0x06), "6A86"),  # no such scheme
        (sign_apdu(bytes(51), p2=0x00), "6A86"),  # application default key: not offered
        (sign_apdu(bytes(51), p2=0x8A), "6985"),  # 000A is a certificate, not a key
        (sign_apdu(bytes(51), p2=0x85), "6A88"),  # no EF 0005
    ],
)
def test_bad_sign_commands(card: Card, apdu: str, sw: str) -> None:
    card.ok(select_df(JPKI), select_ef("0018"), verify(PIN), select_ef("0017"))
    assert card.sw(apdu) == sw


def test_sign_needs_a_key_as_the_current_ef(card: Card) -> None:
    assert card.sw(select_df(JPKI), sign_apdu(bytes(51))) == "6986"
    assert card.sw(select_ef("0018"), sign_apdu(bytes(51))) == "6985"
