"""Status words map to the exceptions a kiosk can explain to its user."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardreader.apdu import ResponseApdu
from cardreader.status import (
    SW,
    CardCommandError,
    FileNotFoundOnCardError,
    PinLockedError,
    SecurityStatusError,
    WrongPinError,
    check,
    error_for,
)


def test_9000_is_no_error_and_check_returns_the_response() -> None:
    response = ResponseApdu(b"\x01\x02", 0x90, 0x00)
    assert error_for(response) is None
    assert check(response) is response


@given(st.integers(1, 15))
def test_63cx_is_a_wrong_pin_with_x_tries_left(tries: int) -> None:
    error = error_for(ResponseApdu.status(SW.tries(tries)))
    assert isinstance(error, WrongPinError)
    assert error.tries_left == tries
    assert error.sw == 0x63C0 | tries


def test_63c0_means_the_pin_is_now_locked() -> None:
    assert isinstance(error_for(ResponseApdu.status(0x63C0)), PinLockedError)


def test_6984_verify_on_a_blocked_pin_is_locked() -> None:
    assert isinstance(error_for(ResponseApdu.status(0x6984)), PinLockedError)


@pytest.mark.parametrize(
    ("sw", "kind"),
    [
        (0x6982, SecurityStatusError),
        (0x6983, PinLockedError),
        (0x6A82, FileNotFoundOnCardError),
        (0x6B00, CardCommandError),
        (0x6D00, CardCommandError),
        (0x6700, CardCommandError),
    ],
)
def test_documented_status_words_map_to_their_exception(sw: int, kind: type) -> None:
    with pytest.raises(kind) as caught:
        check(ResponseApdu.status(sw))
    assert caught.value.sw == sw
    assert f"{sw:04X}" in str(caught.value)


@given(st.integers(0, 0xFFFF).filter(lambda sw: sw != 0x9000))
def test_every_status_word_but_9000_raises_a_card_error_with_a_title(sw: int) -> None:
    error = error_for(ResponseApdu.status(sw))
    assert error is not None
    assert error.title_en and error.title_ja
    assert error.sw == sw


def test_a_wrong_pin_message_states_the_tries_and_nothing_else() -> None:
    assert str(WrongPinError(2, sw=0x63C2)) == "wrong PIN, 2 tries left (SW 63C2)"
