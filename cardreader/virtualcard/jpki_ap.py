"""公的個人認証AP (JPKI AP): certificates, keys and PINs of the two JPKI certificates (jpki.md §2)."""

from __future__ import annotations

import hashlib

from cardreader.virtualcard.filesystem import BinaryEf, Df, Ef, KeyEf, df
from cardreader.virtualcard.pins import FOUR_DIGITS, SIGN_PASSWORD, PinEf, PinSource
from cardreader.virtualcard.signer import RsaSigner
from konbini_common.cardfile import CardFile

AID = bytes.fromhex("D392F000260100000001")  # jpki.md §1: 公的個人認証AP

# jpki.md §2: file IDs of the JPKI AP
SIGN_CERT = 0x0001  # 署名用電子証明書, readable after the sign password
SIGN_CA_CERT = 0x0002  # 署名用CA証明書
TOKEN_INFO = 0x0006  # CK_TOKEN_INFO, 160 bytes
CERT_AVAILABILITY = 0x0008  # 8F 8F 00
AUTH_CERT = 0x000A  # 利用者証明用電子証明書
AUTH_CA_CERT = 0x000B  # 利用者証明用CA証明書
UNKNOWN_KEY = 0x0010  # key reference of unknown purpose (answers the empty VERIFY)
AUTH_KEY = 0x0017  # 利用者証明用秘密鍵
AUTH_PIN = 0x0018  # 利用者証明用暗証番号: 4 digits, 3 tries
SIGN_KEY = 0x001A  # 署名用秘密鍵
SIGN_PIN = 0x001B  # 署名用パスワード: 6-16 A-Z0-9, 5 tries

CERT_PRESENT = 0x8F  # jpki.md §2: EF 0008 byte value for a certificate on the card
TOKEN_INFO_SIZE = 160


def _ascii(text: str, size: int) -> bytes:
    return text.encode("ascii", "replace")[:size].ljust(size, b" ")


def token_info(card: CardFile) -> bytes:
    """EF 0006: a serialized CK_TOKEN_INFO, layout of jpki.md §2.1 (all integers big-endian)."""
    serial = str(int.from_bytes(hashlib.sha256(card.auth_certificate).digest()[:8], "big"))[-16:]
    fields = [
        _ascii(card.token_label, 32),  # label, space padded (Go myna trims spaces only)
        _ascii("KONBINI-KIOSK VIRTUAL CARD", 32),  # manufacturerID
        _ascii("VIRTUAL1", 16),  # model
        _ascii(serial.rjust(16, "0"), 16),  # serialNumber
        (0x0000040D).to_bytes(4, "big"),  # RNG | LOGIN_REQUIRED | USER_PIN_INITIALIZED | TOKEN_INITIALIZED
        b"".join(v.to_bytes(4, "big") for v in (1, 0, 1, 0)),  # max/cur session, max/cur rw session
        (16).to_bytes(4, "big"),  # maxPinLen
        (6).to_bytes(4, "big"),  # minPinLen
        b"\xff" * 16,  # memory fields: unavailable
        b"03",  # hardware version (ASCII, as observed)
        b"01",  # firmware version
        b"0" * 16,  # utcTime: opaque on the real card
    ]
    info = b"".join(fields)
    assert len(info) == TOKEN_INFO_SIZE
    return info


def build(card: CardFile) -> Df:
    """The JPKI AP of `card`. Raises CardFileError for unusable keys."""
    has_sign = card.sign_certificate is not None and card.sign_private_key is not None
    efs: list[Ef] = [
        BinaryEf(TOKEN_INFO, token_info(card)),
        BinaryEf(CERT_AVAILABILITY, bytes((CERT_PRESENT if has_sign else 0x00, CERT_PRESENT, 0x00))),
        BinaryEf(AUTH_CERT, card.auth_certificate),
        BinaryEf(AUTH_CA_CERT, card.auth_ca_certificate),
        KeyEf(AUTH_KEY, RsaSigner(card.auth_private_key), AUTH_PIN),
        PinEf(AUTH_PIN, "auth", PinSource.STORED, 3, new_pin_format=FOUR_DIGITS),
        PinEf(UNKNOWN_KEY, "jpki.0010", PinSource.UNLIMITED, 0),
    ]
    if has_sign:
        assert card.sign_certificate is not None and card.sign_private_key is not None
        efs.append(BinaryEf(SIGN_CERT, card.sign_certificate, read_keys=frozenset({SIGN_PIN})))
        efs.append(KeyEf(SIGN_KEY, RsaSigner(card.sign_private_key), SIGN_PIN))
    if card.sign_ca_certificate is not None:
        efs.append(BinaryEf(SIGN_CA_CERT, card.sign_ca_certificate))
    if "sign" in card.pins:
        efs.append(PinEf(SIGN_PIN, "sign", PinSource.STORED, card.pins["sign"].max_tries, new_pin_format=SIGN_PASSWORD))
    return df("JPKI AP", AID, *efs)
