"""The card's other applications, as far as clients touch them (jpki.md §7): 券面事項確認AP,
共通カードAP, 住基AP and the GlobalPlatform ISD. Their contents are minimal but well formed;
secrets the card file does not hold answer the empty VERIFY and nothing else."""

from __future__ import annotations

import datetime as dt
import hashlib

from cryptography import x509
from cryptography.x509.oid import NameOID

from cardreader.virtualcard.filesystem import BinaryEf, Df, RecordEf, df, tlv
from cardreader.virtualcard.kenkaku_face import card_face
from cardreader.virtualcard.pins import PinEf, PinSource
from konbini_common.cardfile import CardFile

KENKAKU_AID = bytes.fromhex("D3921000310001010402")  # 券面事項確認AP
KYOTSU_AID = bytes.fromhex("D3921000310001010100")  # 共通カードAP
JUKI_AID = bytes.fromhex("D3921000310001010401")  # 住基AP
ISD_AID = bytes.fromhex("A0000001510000")  # GlobalPlatform issuer security domain, current at power-up

# DF33 of 券面事項確認AP EF 0003 precedes the municipality code (DF34); real cards carry 256
# bytes there (`DF 33 82 01 00`, jpki.md §6.2) whose meaning is not documented: zeros here.
_BASIC_INFO_VERSION = bytes(256)
KENKAKU_TRIES = 10  # not documented (jpki.md §14); chosen
COMMON_PIN_TRIES = 3  # jpki.md §4.1: 共通AP / 住基AP PIN 001C, "(3)"


JST = dt.timezone(dt.timedelta(hours=9), "JST")
_TEST_CN_PREFIX = "TESTONLY"  # the test CA's CNs: TESTONLY + municipality code + random


def _digits(seed: bytes, count: int) -> str:
    return str(int.from_bytes(hashlib.sha256(seed).digest(), "big"))[-count:].rjust(count, "0")


def municipality_code(card: CardFile) -> str:
    """The issuing municipality's 5-digit code: from the card file's `card_face`, else from the
    authentication certificate's CN (the test CA writes it there, as J-LIS test cards do),
    else 00000."""
    if card.card_face is not None and card.card_face.municipality_code:
        return card.card_face.municipality_code
    try:
        cert = x509.load_der_x509_certificate(card.auth_certificate)
        cn = str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
    except (ValueError, IndexError):
        return "00000"
    code = cn[len(_TEST_CN_PREFIX) : len(_TEST_CN_PREFIX) + 5]
    return code if cn.startswith(_TEST_CN_PREFIX) and code.isdigit() and len(code) == 5 else "00000"


def card_expiry(card: CardFile) -> str:
    """The card's expiry YYYYMMDD: from `card_face`, else the authentication certificate's
    last day (JST), which never lies after the card's."""
    if card.card_face is not None and card.card_face.expires_on:
        return card.card_face.expires_on
    try:
        not_after = x509.load_der_x509_certificate(card.auth_certificate).not_valid_after_utc
    except ValueError:
        return "00000000"
    return not_after.astimezone(JST).strftime("%Y%m%d")


def _kenkaku(card: CardFile) -> Df:
    """券面事項確認AP: 0002 card face (opened by 照合番号A 0013 or B 0012), 0003 basic info."""
    data = card.kenhojo
    face = card_face(card, card_expiry(card))
    basic = tlv(
        b"\xff\x30",
        tlv(b"\xdf\x31", bytes((0x01, 0x03, 0x0E, 0x01)))
        + tlv(b"\xdf\x32", hashlib.sha256(b"kenkaku" + card.auth_certificate).digest()[:16])
        + tlv(b"\xdf\x33", _BASIC_INFO_VERSION)
        + tlv(b"\xdf\x34", municipality_code(card).encode("ascii")),
    )
    return df(
        "券面事項確認AP",
        KENKAKU_AID,
        BinaryEf(0x0002, face, read_keys=frozenset({0x0012, 0x0013})),  # 券面 (card face)
        BinaryEf(0x0003, basic),  # basic info
        PinEf(0x0011, "kenkaku.birth", PinSource.ABSENT, KENKAKU_TRIES),  # 生年月日 key
        PinEf(0x0012, "kenkaku.shogo_b", PinSource.ABSENT, KENKAKU_TRIES),  # 照合番号B
        PinEf(
            0x0013,
            "kenkaku.shogo_a",
            PinSource.DERIVED,
            KENKAKU_TRIES,  # 照合番号A = My Number
            derived_secret=data.my_number,
        ),
    )


def _kyotsu(card: CardFile) -> Df:
    """共通カードAP: record 1 of EF 0001 = 01 1C + serial(15) + municipality(5) + expiry(8)."""
    serial = _digits(b"serial" + card.auth_certificate, 15)
    record = b"\x01\x1c" + (serial + municipality_code(card) + card_expiry(card)).encode("ascii")
    return df(
        "共通カードAP",
        KYOTSU_AID,
        RecordEf(0x0001, (record,)),  # card serial, municipality, expiry
        PinEf(0x001C, "kyotsu.pin", PinSource.ABSENT, COMMON_PIN_TRIES),  # 共通AP PIN
    )


def build(card: CardFile) -> list[Df]:
    return [
        _kenkaku(card),
        _kyotsu(card),
        df("住基AP", JUKI_AID, PinEf(0x001C, "juki.pin", PinSource.ABSENT, COMMON_PIN_TRIES)),
        df("GlobalPlatform ISD", ISD_AID),
    ]
