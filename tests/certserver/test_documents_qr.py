"""The QR payload: compact, signed, and exact about what it certifies."""

from __future__ import annotations

from datetime import date

import pytest
import segno
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from certserver.documents.qr import (
    QR_MAX_VERSION,
    QrPayloadError,
    parse_payload,
    qr_matrix,
    sign_payload,
)

KEY = ed25519.Ed25519PrivateKey.generate()
numbers = st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-", min_size=1, max_size=20)
codes = st.text(alphabet="0123456789", min_size=5, max_size=5)
days = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))


@given(codes, numbers, days, st.binary(min_size=32, max_size=32))
def test_payloads_round_trip_and_verify(code: str, number: str, day: date, content_hash: bytes) -> None:
    payload = sign_payload(KEY, code, number, day, content_hash)
    parsed = parse_payload(payload.text())
    assert parsed == payload
    assert parsed.content_hash16 == content_hash[:16]
    assert parsed.verify(KEY.public_key())


@settings(max_examples=50)
@given(codes, numbers, days, st.binary(min_size=32, max_size=32))
def test_payloads_fit_a_small_qr_code(code: str, number: str, day: date, content_hash: bytes) -> None:
    text = sign_payload(KEY, code, number, day, content_hash).text()
    assert segno.make_qr(text, error="m", mask=0).version <= QR_MAX_VERSION
    assert set(text) <= set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")  # alphanumeric mode
    assert len(qr_matrix(text)) <= 17 + 4 * QR_MAX_VERSION


@given(st.data())
def test_any_changed_character_breaks_the_signature(data: st.DataObject) -> None:
    text = sign_payload(KEY, "08217", "R8-000001", date(2026, 11, 26), bytes(range(32))).text()
    index = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
    replacement = data.draw(st.sampled_from("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    changed = text[:index] + replacement + text[index + 1 :]
    if changed == text:
        return
    try:
        parsed = parse_payload(changed)
    except QrPayloadError:
        return  # no longer a payload at all: also a rejection
    assert not parsed.verify(KEY.public_key())


def test_another_key_does_not_verify() -> None:
    payload = sign_payload(KEY, "08217", "R8-000001", date(2026, 11, 26), bytes(32))
    assert not payload.verify(ed25519.Ed25519PrivateKey.generate().public_key())


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "KK1:08217",
        "KK2:08217:N:20261126:AAAA",
        "KK1:08217:n:20261126:AAAA",
        "KK1:08217:N:2026112:AAAA",
        "KK1:08217:N:20261126:!!!!",
    ],
)
def test_malformed_payloads_are_refused(bad: str) -> None:
    with pytest.raises(QrPayloadError):
        parse_payload(bad)


def test_numbers_the_qr_alphabet_cannot_carry_are_refused() -> None:
    with pytest.raises(QrPayloadError):
        sign_payload(KEY, "08217", "r8:001", date(2026, 11, 26), bytes(32))
