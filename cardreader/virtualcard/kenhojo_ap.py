"""券面事項入力補助AP (card-info input helper): My Number and 基本4情報 (jpki.md §6)."""

from __future__ import annotations

import hashlib
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from cardreader.virtualcard.filesystem import BinaryEf, Df, df, pad, tlv, with_offset_table
from cardreader.virtualcard.kenkaku_face import face_signer_key
from cardreader.virtualcard.pins import FOUR_DIGITS, PinEf, PinSource
from konbini_common.cardfile import CardFile, KenhojoData

AID = bytes.fromhex("D3921000310001010408")  # jpki.md §1: 券面事項入力補助AP

# jpki.md §6: file IDs of the 券面事項入力補助AP
MY_NUMBER = 0x0001  # 個人番号
BASIC_FOUR = 0x0002  # 基本4情報 (氏名, 住所, 生年月日, 性別)
INTEGRITY = 0x0003  # hashes of 0001/0002 and a signature
CV_CERT = 0x0004  # the AP's card-verifiable certificate
BASIC_INFO = 0x0005  # AP basic info
PIN = 0x0011  # 券面事項入力補助用暗証番号: 4 digits, 3 tries
BLOCKED_KEY = 0x0012  # blocked at issue
SHOGO_A = 0x0014  # 照合番号A (= the 12-digit My Number)
SHOGO_B = 0x0015  # 照合番号B (era birth date + expiry year + security code)

# Sizes Go myna reads in one go (jpki.md §3.2); the EFs are padded with FF to them.
INTEGRITY_SIZE = 336
CV_CERT_SIZE = 568
BASIC_INFO_SIZE = 256
# Tries of the 照合番号 are not documented (jpki.md §14); chosen, not observed.
SHOGO_TRIES = 10


def my_number_ef(data: KenhojoData) -> bytes:
    """EF 0001: FF 10 0C + 12 ASCII digits, then the FF FF filler (17 bytes)."""
    return tlv(b"\xff\x10", data.my_number.encode("ascii")) + b"\xff\xff"


def basic_four_ef(data: KenhojoData) -> bytes:
    """EF 0002: FF20 { DF21 offsets, DF22 name, DF23 address, DF24 birth, DF25 sex }."""
    return with_offset_table(
        b"\xff\x20",
        b"\xdf\x21",
        [
            tlv(b"\xdf\x22", data.name.encode("utf-8")),  # 氏名
            tlv(b"\xdf\x23", data.address.encode("utf-8")),  # 住所
            tlv(b"\xdf\x24", data.birth_date.encode("ascii")),  # 生年月日
            tlv(b"\xdf\x25", data.sex.encode("ascii")),  # 性別
        ],
    )


def integrity_ef(my_number: bytes, basic_four: bytes) -> bytes:
    """EF 0003: FF30 { DF31 SHA-256 of EF 0001, DF32 SHA-256 of EF 0002's value after the
    offset table, DF33 RSA-2048 signature over DF31 and DF32 }.

    J-LIS signs real cards; here the emulator's TEST ONLY key signs (PKCS#1 v1.5, SHA-256),
    whose public key EF 0004's CV certificate carries."""
    length_byte = basic_four[2]
    header_size = 3 + (length_byte & 0x7F if length_byte >= 0x80 else 0)
    after_table = basic_four[header_size + 3 + 8 :]
    hashed = tlv(b"\xdf\x31", hashlib.sha256(my_number).digest()) + tlv(
        b"\xdf\x32", hashlib.sha256(after_table).digest()
    )
    signature = face_signer_key().sign(hashed, padding.PKCS1v15(), hashes.SHA256())
    return pad(tlv(b"\xff\x30", hashed + tlv(b"\xdf\x33", signature)), INTEGRITY_SIZE)


CV_CERT_AUTHORITY = b"KKTESTCA"  # 42 CAR: certification authority reference, TEST ONLY
CV_CERT_HOLDER = b"KKTESTAP"  # 5F20 CHR: certificate holder reference (this AP's key)


@lru_cache(maxsize=1)
def cv_cert_ef() -> bytes:
    """EF 0004: a card-verifiable certificate (ISO 7816-8 layout, jpki.md §6):
    7F21 { 5F4E { 5F29 profile, 42 CAR, 7F49 { 81 modulus, 82 exponent }, 5F20 CHR },
    5F37 signature over the 5F4E TLV }, padded with FF to the 568 bytes Go myna reads.
    It certifies the emulator's TEST ONLY key that signs EF 0003, self-signed by that key."""
    numbers = face_signer_key().public_key().public_numbers()
    public_key = tlv(
        b"\x7f\x49", tlv(b"\x81", numbers.n.to_bytes(256, "big")) + tlv(b"\x82", numbers.e.to_bytes(3, "big"))
    )
    content = tlv(
        b"\x5f\x4e",
        tlv(b"\x5f\x29", b"\x00") + tlv(b"\x42", CV_CERT_AUTHORITY) + public_key + tlv(b"\x5f\x20", CV_CERT_HOLDER),
    )
    signature = face_signer_key().sign(content, padding.PKCS1v15(), hashes.SHA256())
    return pad(tlv(b"\x7f\x21", content + tlv(b"\x5f\x37", signature)), CV_CERT_SIZE)


def basic_info_ef(data: KenhojoData) -> bytes:
    """EF 0005: FF40 { DF41 APID, DF42 key id, DF43 ... }, padded to 256 bytes."""
    key_id = hashlib.sha256(b"kenhojo key id " + data.my_number.encode("ascii")).digest()[:16]
    body = (
        tlv(b"\xdf\x41", bytes((0x01, 0x03, 0x0E, 0x01)))  # observed values (jpki.md §6.3)
        + tlv(b"\xdf\x42", key_id)
        + b"\xdf\x43\x82\x00\x80"
        + pad(hashlib.sha256(key_id).digest(), 128)
    )
    return pad(b"\xff\x40\x82" + len(body).to_bytes(2, "big") + body, BASIC_INFO_SIZE)


def build(card: CardFile) -> Df:
    data = card.kenhojo
    my_number, basic_four = my_number_ef(data), basic_four_ef(data)
    return df(
        "券面事項入力補助AP",
        AID,
        BinaryEf(MY_NUMBER, my_number, read_keys=frozenset({PIN, SHOGO_A})),
        BinaryEf(BASIC_FOUR, basic_four, read_keys=frozenset({PIN, SHOGO_B})),
        BinaryEf(INTEGRITY, integrity_ef(my_number, basic_four), read_keys=frozenset({PIN, SHOGO_A, SHOGO_B})),
        BinaryEf(CV_CERT, cv_cert_ef()),
        BinaryEf(BASIC_INFO, basic_info_ef(data)),
        PinEf(PIN, "kenhojo", PinSource.STORED, 3, new_pin_format=FOUR_DIGITS),
        PinEf(BLOCKED_KEY, "kenhojo.0012", PinSource.BLOCKED, 0),
        PinEf(SHOGO_A, "kenhojo.shogo_a", PinSource.DERIVED, SHOGO_TRIES, derived_secret=data.my_number),
        PinEf(SHOGO_B, "kenhojo.shogo_b", PinSource.ABSENT, SHOGO_TRIES),
    )
