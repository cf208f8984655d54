"""The QR code printed on every certificate: a signed summary a phone can check offline.

Payload (QR alphanumeric characters only, so it fits version 7-8 at level M):

    KK1:<municipality code>:<certificate number>:<YYYYMMDD>:<BASE32(hash16 || signature)>

`hash16` is the first 16 bytes of `CertificateContent.content_hash()`; the Ed25519 signature
covers the text before the last field plus `hash16`. The mask is fixed: automatic mask
selection costs 5-10 times the encoding itself and any mask decodes equally well.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import date

import segno
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

PREFIX = "KK1"
HASH_BYTES = 16
SIGNATURE_BYTES = 64
QR_ERROR = "m"
QR_MASK = 0
QR_MAX_VERSION = 11
# Characters of the QR alphanumeric mode, minus the field separator.
_FIELD = re.compile(r"[0-9A-Z $%*+\-./]+")


class QrPayloadError(ValueError):
    """The text is not a certificate QR payload (wrong prefix, fields or encoding)."""


@dataclass(frozen=True)
class QrPayload:
    municipality_code: str
    certificate_number: str
    issued_on: date
    content_hash16: bytes
    signature: bytes

    def signed_bytes(self) -> bytes:
        return _signed_bytes(self.municipality_code, self.certificate_number, self.issued_on, self.content_hash16)

    def text(self) -> str:
        blob = base64.b32encode(self.content_hash16 + self.signature).decode().rstrip("=")
        return f"{_head(self.municipality_code, self.certificate_number, self.issued_on)}{blob}"

    def verify(self, public_key: ed25519.Ed25519PublicKey) -> bool:
        try:
            public_key.verify(self.signature, self.signed_bytes())
        except InvalidSignature:
            return False
        return True


def _head(code: str, number: str, issued_on: date) -> str:
    return f"{PREFIX}:{code}:{number}:{issued_on.strftime('%Y%m%d')}:"


def _signed_bytes(code: str, number: str, issued_on: date, hash16: bytes) -> bytes:
    return _head(code, number, issued_on).encode("ascii") + hash16


def sign_payload(
    key: ed25519.Ed25519PrivateKey,
    municipality_code: str,
    certificate_number: str,
    issued_on: date,
    content_hash: bytes,
) -> QrPayload:
    """Sign the summary of one certificate. Raises QrPayloadError if a field cannot be encoded."""
    for value in (municipality_code, certificate_number):
        if not _FIELD.fullmatch(value):
            raise QrPayloadError(f"field {value!r} is not QR alphanumeric (0-9 A-Z $%*+-./ space)")
    hash16 = content_hash[:HASH_BYTES]
    signature = key.sign(_signed_bytes(municipality_code, certificate_number, issued_on, hash16))
    return QrPayload(municipality_code, certificate_number, issued_on, hash16, signature)


def parse_payload(text: str) -> QrPayload:
    """Parse a decoded QR text. Raises QrPayloadError when it is not a certificate payload."""
    parts = text.strip().split(":")
    if len(parts) != 5 or parts[0] != PREFIX:
        raise QrPayloadError("not a certificate QR code")
    _, code, number, day, blob = parts
    if not (_FIELD.fullmatch(code) and _FIELD.fullmatch(number)):
        raise QrPayloadError("bad municipality code or certificate number")
    try:
        issued_on = date(int(day[:4]), int(day[4:6]), int(day[6:8])) if re.fullmatch(r"[0-9]{8}", day) else None
        raw = base64.b32decode(blob + "=" * (-len(blob) % 8))
    except ValueError as exc:
        raise QrPayloadError("bad date or signature encoding") from exc
    if issued_on is None or len(raw) != HASH_BYTES + SIGNATURE_BYTES:
        raise QrPayloadError("bad date or signature length")
    return QrPayload(code, number, issued_on, raw[:HASH_BYTES], raw[HASH_BYTES:])


def qr_matrix(text: str) -> tuple[tuple[bool, ...], ...]:
    """Dark modules of the QR code for `text` (without the quiet zone), row by row.

    Raises QrPayloadError if it does not fit version 11.
    """
    try:
        code = segno.make_qr(text, error=QR_ERROR, mask=QR_MASK, boost_error=False)
    except segno.DataOverflowError as exc:
        raise QrPayloadError("payload too long for a QR code") from exc
    version = code.version
    # make_qr never makes a Micro QR code, the only kind whose versions are strings (M1-M4).
    if not isinstance(version, int) or version > QR_MAX_VERSION:
        raise QrPayloadError(f"payload needs QR version {version} > {QR_MAX_VERSION}")
    return tuple(tuple(bool(m) for m in row) for row in code.matrix)
