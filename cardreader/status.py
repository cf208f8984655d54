"""Status words (jpki.md §8) and the exceptions the host side raises for them.

Every exception carries a title a kiosk user can read, in Japanese and English, and never
the data of the command that failed (a VERIFY carries a PIN).
"""

from __future__ import annotations

from enum import IntEnum

from cardreader.apdu import ResponseApdu


class SW(IntEnum):
    """Status words the My Number card uses (JICSAP wording, jpki.md §8)."""

    OK = 0x9000
    VERIFY_FAILED = 0x63C0  # 63 Cx: x tries left; 63 C0 when exhausted
    VERIFY_FAILED_UNLIMITED = 0x6300
    WRONG_LENGTH = 0x6700
    LOGICAL_CHANNEL_NOT_SUPPORTED = 0x6881
    INCOMPATIBLE_FILE_STRUCTURE = 0x6981
    SECURITY_STATUS_NOT_SATISFIED = 0x6982
    AUTH_METHOD_BLOCKED = 0x6983
    REFERENCE_DATA_LOCKED = 0x6984  # VERIFY on a blocked PIN
    CONDITIONS_NOT_SATISFIED = 0x6985
    NO_CURRENT_EF = 0x6986
    FILE_NOT_FOUND = 0x6A82
    RECORD_NOT_FOUND = 0x6A83
    INCORRECT_P1P2 = 0x6A86
    REFERENCED_DATA_NOT_FOUND = 0x6A88
    OFFSET_OUT_OF_RANGE = 0x6B00
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00

    @staticmethod
    def tries(tries_left: int) -> int:
        """63 Cx with x = tries left (0..15)."""
        return 0x63C0 | (tries_left & 0x0F)


class CardError(Exception):
    """A card or reader problem, with a title a kiosk user can read."""

    title_ja = "カードを読み取れませんでした"
    title_en = "The card could not be read"

    def __init__(self, message: str | None = None, *, sw: int | None = None) -> None:
        self.sw = sw
        detail = message or self.title_en
        if sw is not None:
            detail = f"{detail} (SW {sw:04X})"
        super().__init__(detail)


class CardRemovedError(CardError):
    title_ja = "カードが取り外されました"
    title_en = "The card was removed"


class NoCardError(CardError):
    title_ja = "カードが置かれていません"
    title_en = "No card is in the reader"


class UnresponsiveCardError(CardError):
    """A card is in the reader but gives no answer to reset (a mute or broken chip)."""


class ReaderError(CardError):
    title_ja = "カードリーダーが使えません"
    title_en = "The card reader is not available"


class NotMyNumberCardError(CardError):
    title_ja = "マイナンバーカードではありません"
    title_en = "This is not a My Number card"


class WrongPinError(CardError):
    """A wrong PIN; `tries_left` more attempts before the card locks it."""

    title_ja = "暗証番号が違います"
    title_en = "The PIN is incorrect"

    def __init__(self, tries_left: int, *, sw: int | None = None) -> None:
        self.tries_left = tries_left
        super().__init__(f"wrong PIN, {tries_left} tries left", sw=sw)


class PinLockedError(CardError):
    title_ja = "暗証番号がロックされています。市区町村の窓口で解除してください"
    title_en = "The PIN is locked. Please have it reset at your city office"


class SecurityStatusError(CardError):
    title_ja = "暗証番号の入力が必要です"
    title_en = "The PIN must be entered first"


class FileNotFoundOnCardError(CardError):
    title_ja = "カードに必要な情報がありません"
    title_en = "The card lacks the requested file"


class CardCommandError(CardError):
    """Any other status word: a protocol fault, not something the resident did."""


_BY_SW: dict[int, type[CardError]] = {
    SW.SECURITY_STATUS_NOT_SATISFIED: SecurityStatusError,
    SW.AUTH_METHOD_BLOCKED: PinLockedError,
    SW.REFERENCE_DATA_LOCKED: PinLockedError,
    SW.FILE_NOT_FOUND: FileNotFoundOnCardError,
}


def error_for(response: ResponseApdu) -> CardError | None:
    """The exception a response stands for, or None for 90 00."""
    sw = response.sw
    if sw == SW.OK:
        return None
    if response.sw1 == 0x63 and (response.sw2 & 0xF0) == 0xC0:
        tries_left = response.sw2 & 0x0F
        if tries_left == 0:
            return PinLockedError(sw=sw)
        return WrongPinError(tries_left, sw=sw)
    kind = _BY_SW.get(sw, CardCommandError)
    return kind(sw=sw)


def check(response: ResponseApdu) -> ResponseApdu:
    """Return the response if it is 90 00, else raise the matching CardError."""
    error = error_for(response)
    if error is not None:
        raise error
    return response
