"""The host-side JPKI client (公的個人認証): typed operations on a My Number card.

It sends exactly the APDUs that OpenSC and jpki/myna send (jpki.md §9, §10), so the same
code drives a real card in a real reader and the virtual card. Secrets (PIN, password) are
parameters of one call only: never stored on the client, never put in an exception message
or a log line (the transport redacts VERIFY data in its trace).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from cardreader.apdu import CommandApdu, ResponseApdu
from cardreader.status import (
    SW,
    CardCommandError,
    FileNotFoundOnCardError,
    NotMyNumberCardError,
    PinLockedError,
    check,
)
from cardreader.transport import Transport

# DF names (jpki.md §1)
JPKI_AID = bytes.fromhex("D392F000260100000001")  # 公的個人認証AP (JPKI AP)
KENHOJO_AID = bytes.fromhex("D3921000310001010408")  # 券面事項入力補助AP (card-info input helper)

# JPKI AP EFs (jpki.md §2)
EF_SIGN_CERT = 0x0001  # 署名用電子証明書, readable after the sign password
EF_SIGN_CA_CERT = 0x0002  # 署名用CA証明書
EF_TOKEN_INFO = 0x0006  # CK_TOKEN_INFO; first 32 bytes = label
EF_AUTH_CERT = 0x000A  # 利用者証明用電子証明書
EF_AUTH_CA_CERT = 0x000B  # 利用者証明用CA証明書
EF_AUTH_KEY = 0x0017  # 利用者証明用秘密鍵
EF_AUTH_PIN = 0x0018  # 利用者証明用暗証番号 (4 digits, 3 tries)
EF_SIGN_KEY = 0x001A  # 署名用秘密鍵
EF_SIGN_PIN = 0x001B  # 署名用パスワード (6-16 A-Z0-9, 5 tries)

# 券面事項入力補助AP EFs (jpki.md §6)
EF_MY_NUMBER = 0x0001  # 個人番号, 17 bytes: FF10 TLV + FF FF filler
EF_BASIC_FOUR = 0x0002  # 基本4情報, FF20 { DF21..DF25 }
EF_KENHOJO_PIN = 0x0011  # 券面事項入力補助用暗証番号 (4 digits, 3 tries)

# SHA-256 DigestInfo prefix (RFC 8017 §9.2 note 1): the card only pads (jpki.md §5)
SHA256_DIGEST_INFO_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")
SIGNATURE_LENGTH = 256  # RSA-2048
_READ_HEADER = 7  # first READ BINARY: enough for a tag of 2 bytes and a length of 82 LL LL
_MAX_SHORT_LE = 256


class PinFormatError(ValueError):
    """A PIN or password the card would never accept; checked before anything is sent,
    so a typo does not cost a try. The message never contains the secret."""

    title_ja = "暗証番号の形式が正しくありません"
    title_en = "The PIN is not in the right format"


class CardDataError(CardCommandError):
    """Data on the card that is not in the documented format (BER, FF10, FF20)."""


@dataclass(frozen=True)
class BasicFour:
    """基本4情報: the basic four items of the card-info input helper AP."""

    name: str  # 氏名, surname + U+3000 + given name
    address: str  # 住所
    birth_date: str  # 生年月日, YYYYMMDD (Gregorian)
    sex: str  # 性別: "1" male, "2" female, "9" not applicable

    def __repr__(self) -> str:  # a resident's details do not belong in tracebacks or logs
        return "BasicFour(<redacted>)"


@dataclass(frozen=True)
class Authentication:
    """What a user authentication yields for the server: the auth certificate (DER) and the
    RSASSA-PKCS1-v1_5/SHA-256 signature over the challenge."""

    certificate: bytes
    signature: bytes


# -- BER (jpki.md §13: two-byte private tags, long lengths, non-minimal 82 00 9F) -----------


def parse_ber_header(data: bytes, offset: int = 0) -> tuple[int, int, int]:
    """(tag, header length, value length) of the TLV at `offset`. Multi-byte tags and the
    81/82/83 length forms are understood. Raises CardDataError for a truncated or
    indefinite header."""
    pos = offset
    try:
        tag = data[pos]
        pos += 1
        if tag & 0x1F == 0x1F:
            while True:
                byte = data[pos]
                pos += 1
                tag = (tag << 8) | byte
                if not byte & 0x80:
                    break
        first = data[pos]
        pos += 1
        if first < 0x80:
            length = first
        else:
            count = first & 0x7F
            if count == 0 or count > 3:
                raise CardDataError(f"unsupported BER length form {first:02X}")
            if pos + count > len(data):
                raise IndexError
            length = int.from_bytes(data[pos : pos + count], "big")
            pos += count
    except IndexError:
        raise CardDataError("truncated BER header") from None
    return tag, pos - offset, length


def iter_tlv(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(tag, value) of each TLV in `data`, stopping at FF/00 filler. Raises CardDataError."""
    pos = 0
    while pos < len(data) and not _filler_at(data, pos):
        tag, header, length = parse_ber_header(data, pos)
        end = pos + header + length
        if end > len(data):
            raise CardDataError("TLV value runs past the data")
        yield tag, data[pos + header : end]
        pos = end


def _filler_at(data: bytes, pos: int) -> bool:
    # FF10 / FF20 are real tags (private class, constructed); filler is 00 or FF FF.
    if data[pos] == 0x00:
        return True
    return data[pos] == 0xFF and (pos + 1 == len(data) or data[pos + 1] == 0xFF)


def sha256_digest_info(digest: bytes) -> bytes:
    """The DigestInfo of a SHA-256 digest. Raises ValueError unless it is 32 bytes."""
    if len(digest) != 32:
        raise ValueError(f"a SHA-256 digest is 32 bytes, not {len(digest)}")
    return SHA256_DIGEST_INFO_PREFIX + digest


# -- secrets ----------------------------------------------------------------------------


def pin_bytes(pin: str) -> bytes:
    """A 4-digit PIN as the card expects it. Raises PinFormatError."""
    if len(pin) != 4 or not all(c in "0123456789" for c in pin):
        raise PinFormatError("the PIN must be 4 digits (暗証番号は数字4桁です)")
    return pin.encode("ascii")


def sign_password_bytes(password: str) -> bytes:
    """A sign password (6-16 A-Z0-9, upper-cased first, as clients do). Raises PinFormatError."""
    upper = password.upper()
    if not 6 <= len(upper) <= 16 or not all(c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" for c in upper):
        raise PinFormatError(
            "the signing password must be 6-16 letters A-Z and digits (署名用パスワードは英大文字と数字6～16文字です)"
        )
    return upper.encode("ascii")


class JpkiClient:
    """JPKI operations over a connected transport. Each method raises the CardError
    subclasses of cardreader.status: NotMyNumberCardError (no JPKI AP), WrongPinError,
    PinLockedError, SecurityStatusError, FileNotFoundOnCardError, CardRemovedError,
    ReaderError, CardCommandError (anything else)."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    # -- primitive commands (bytes exactly as jpki.md §1-§5) -------------------------------
    def _send(self, apdu: CommandApdu) -> ResponseApdu:
        return check(self.transport.transmit(apdu))

    def _select_df(self, aid: bytes) -> None:
        response = self.transport.transmit(CommandApdu(0x00, 0xA4, 0x04, 0x0C, aid))
        if response.sw == SW.FILE_NOT_FOUND:
            raise NotMyNumberCardError(sw=response.sw)
        check(response)

    def _select_ef(self, fid: int) -> None:
        self._send(CommandApdu(0x00, 0xA4, 0x02, 0x0C, fid.to_bytes(2, "big")))

    def _read_binary(self, offset: int, le: int) -> bytes:
        return self._send(CommandApdu(0x00, 0xB0, offset >> 8, offset & 0xFF, le=le)).data

    def _read_tlv(self) -> bytes:
        """The whole TLV at the start of the current EF: 7 bytes first, the header decides
        the rest, read from offset 7 in chunks of 256 with an exact tail (myna's pattern)."""
        head = self._read_binary(0, _READ_HEADER)
        _, header, length = parse_ber_header(head)
        total = header + length
        if total > 0x7FFF:
            raise CardDataError("EF longer than READ BINARY can address")
        data = head[:total]
        while len(data) < total:
            chunk = self._read_binary(len(data), min(_MAX_SHORT_LE, total - len(data)))
            if not chunk:
                raise CardDataError("EF is shorter than its TLV header says")
            data += chunk
        return data

    def _tries_left(self, pin_ef: int) -> int:
        self._select_ef(pin_ef)
        response = self.transport.transmit(CommandApdu(0x00, 0x20, 0x00, 0x80))
        if response.sw1 == 0x63 and response.sw2 & 0xF0 == 0xC0:
            return response.sw2 & 0x0F
        if response.sw == SW.REFERENCE_DATA_LOCKED:
            return 0
        check(response)  # raises for every other error
        raise CardCommandError("the card did not report the remaining tries", sw=response.sw)

    def _verify(self, pin_ef: int, secret: bytes, *, selected: bool = False) -> None:
        if not selected:
            self._select_ef(pin_ef)
        self._send(CommandApdu(0x00, 0x20, 0x00, 0x80, secret))

    def _sign(self, key_ef: int, digest: bytes) -> bytes:
        digest_info = sha256_digest_info(digest)
        self._select_ef(key_ef)
        signature = self._send(CommandApdu(0x80, 0x2A, 0x00, 0x80, digest_info, le=_MAX_SHORT_LE)).data
        if len(signature) != SIGNATURE_LENGTH:
            raise CardDataError(f"signature of {len(signature)} bytes, expected {SIGNATURE_LENGTH}")
        return signature

    # -- JPKI AP ------------------------------------------------------------------------
    def select_jpki(self) -> None:
        """Select the JPKI AP. Raises NotMyNumberCardError when the card has none."""
        self._select_df(JPKI_AID)

    def read_token_label(self) -> str:
        """The token label of EF 0006 (`JPKIAPICCTOKEN2` on a physical card), trailing
        spaces and NULs removed. Selects the JPKI AP first."""
        self.select_jpki()
        self._select_ef(EF_TOKEN_INFO)
        return self._read_binary(0, 32).rstrip(b" \x00").decode("ascii", errors="replace")

    def _read_certificate(self, fid: int) -> bytes:
        self.select_jpki()
        self._select_ef(fid)
        return self._read_tlv()

    def read_auth_certificate(self) -> bytes:
        """利用者証明用電子証明書 (DER). Needs no PIN."""
        return self._read_certificate(EF_AUTH_CERT)

    def read_auth_ca_certificate(self) -> bytes:
        """利用者証明用CA証明書 (DER)."""
        return self._read_certificate(EF_AUTH_CA_CERT)

    def read_sign_ca_certificate(self) -> bytes:
        """署名用CA証明書 (DER)."""
        return self._read_certificate(EF_SIGN_CA_CERT)

    def auth_pin_tries_left(self) -> int:
        """Tries left for the auth PIN (0 = locked), without spending one."""
        self.select_jpki()
        return self._tries_left(EF_AUTH_PIN)

    def verify_auth_pin(self, pin: str) -> None:
        """VERIFY the 4-digit auth PIN. Raises PinFormatError (before sending anything),
        WrongPinError(tries_left), PinLockedError."""
        secret = pin_bytes(pin)
        self.select_jpki()
        self._verify(EF_AUTH_PIN, secret)

    def sign_with_auth_key(self, digest: bytes) -> bytes:
        """Sign a SHA-256 digest with the auth key (PKCS#1 v1.5 over its DigestInfo): 256
        bytes. The auth PIN must be verified. Raises ValueError (not 32 bytes),
        SecurityStatusError (PIN not verified)."""
        return self._sign(EF_AUTH_KEY, digest)

    def authenticate(self, pin: str, challenge: bytes) -> Authentication:
        """The kiosk's user authentication (jpki.md §13), holding the card exclusively:
        select, read the auth certificate, check tries, VERIFY, sign SHA-256 of
        `challenge`. The server checks RSASSA-PKCS1-v1_5/SHA-256 over the challenge.
        Raises PinFormatError, PinLockedError (without spending a try), WrongPinError."""
        secret = pin_bytes(pin)
        digest = hashlib.sha256(challenge).digest()
        with self.transport.exclusive():
            certificate = self.read_auth_certificate()
            if self._tries_left(EF_AUTH_PIN) == 0:
                raise PinLockedError()
            self._verify(EF_AUTH_PIN, secret, selected=True)  # 0018 is current since the tries check
            signature = self._sign(EF_AUTH_KEY, digest)
        return Authentication(certificate, signature)

    def sign_password_tries_left(self) -> int:
        """Tries left for the sign password (0 = locked)."""
        self.select_jpki()
        return self._tries_left(EF_SIGN_PIN)

    def verify_sign_password(self, password: str) -> None:
        """VERIFY the sign password (upper-cased). Raises PinFormatError, WrongPinError,
        PinLockedError."""
        secret = sign_password_bytes(password)
        self.select_jpki()
        self._verify(EF_SIGN_PIN, secret)

    def read_sign_certificate(self, password: str) -> bytes:
        """署名用電子証明書 (DER); verifies the sign password first (the card demands it).
        Raises as verify_sign_password, FileNotFoundOnCardError (no sign cert)."""
        self.verify_sign_password(password)
        self._select_ef(EF_SIGN_CERT)
        return self._read_tlv()

    def sign_with_sign_key(self, digest: bytes) -> bytes:
        """Sign a SHA-256 digest with the signature key; the sign password must be
        verified. Raises ValueError, SecurityStatusError."""
        return self._sign(EF_SIGN_KEY, digest)

    # -- 券面事項入力補助AP ---------------------------------------------------------------
    def _open_kenhojo(self, pin: str) -> None:
        secret = pin_bytes(pin)
        self._select_df(KENHOJO_AID)
        self._verify(EF_KENHOJO_PIN, secret)

    def read_my_number(self, pin: str) -> str:
        """個人番号 (12 digits), after the card-info PIN. Raises PinFormatError,
        WrongPinError, PinLockedError, CardDataError."""
        self._open_kenhojo(pin)
        self._select_ef(EF_MY_NUMBER)
        raw = self._read_binary(0, 17)  # the physical EF is 17 bytes (jpki.md §6.1)
        for tag, value in iter_tlv(raw):
            if tag == 0xFF10:
                number = value.decode("ascii", errors="replace")
                if len(number) != 12 or not number.isdigit():
                    raise CardDataError("My Number EF does not hold 12 digits")
                return number
        raise CardDataError("My Number EF lacks tag FF10")

    def read_basic_four(self, pin: str) -> BasicFour:
        """基本4情報 after the card-info PIN. Raises as read_my_number."""
        self._open_kenhojo(pin)
        self._select_ef(EF_BASIC_FOUR)
        return parse_basic_four(self._read_tlv())


def parse_basic_four(raw: bytes) -> BasicFour:
    """Parse EF 0002 of the card-info AP: FF20 { DF21 offsets, DF22..DF25 }.
    Raises CardDataError."""
    items = list(iter_tlv(raw))
    if not items or items[0][0] != 0xFF20:
        raise CardDataError("basic-four EF lacks tag FF20")
    fields = dict(iter_tlv(items[0][1]))
    try:
        return BasicFour(
            name=fields[0xDF22].decode("utf-8"),
            address=fields[0xDF23].decode("utf-8"),
            birth_date=fields[0xDF24].decode("ascii"),
            sex=fields[0xDF25].decode("ascii"),
        )
    except KeyError as exc:
        raise CardDataError(f"basic-four EF lacks tag {exc.args[0]:04X}") from None
    except UnicodeDecodeError:
        raise CardDataError("basic-four EF holds text that is not UTF-8") from None


__all__ = [
    "Authentication",
    "BasicFour",
    "CardDataError",
    "FileNotFoundOnCardError",
    "JpkiClient",
    "PinFormatError",
    "parse_basic_four",
    "parse_ber_header",
    "sha256_digest_info",
]
