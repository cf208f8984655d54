"""Writer of the virtual card file (format version 1, README.md "The card file").

The issuing service writes the JSON a virtual My Number card reads; it keeps its own writer
so that `certserver` never imports `cardreader` (a card is only bytes on the wire to it).
A test under tests/integration/ proves that cardreader reads what this writes.

Only PIN *verifiers* are written (salted PBKDF2-SHA256): a PIN never reaches the disk.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT_NAME = "konbini-kiosk card file"
FORMAT_VERSION = 1
ATR = "3BE000FF8131FE4514"  # jpki.md §9.1: contact ATR of the My Number card
TOKEN_LABEL = "JPKIAPICCTOKEN2"  # jpki.md §2.1: label of a physical card (EF 0006)
# The card checks the verifier on every VERIFY; 2,000 iterations is what the format
# documents. A 4-digit PIN cannot be protected by any verifier: the file stands for the chip.
PBKDF2_ITERATIONS = 2_000
AUTH_PIN_TRIES = 3  # jpki.md §2: EF 0018, 3 tries
SIGN_PASSWORD_TRIES = 5  # jpki.md §2: EF 001B, 5 tries
KENHOJO_PIN_TRIES = 3  # jpki.md §6: EF 0011, 3 tries


def pin_verifier(secret: str, *, iterations: int = PBKDF2_ITERATIONS) -> str:
    """`pbkdf2-sha256$ITER$SALT$HASH` (base64) of the secret's ASCII bytes."""
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode("ascii"), salt, iterations)
    return "$".join(("pbkdf2-sha256", str(iterations), base64.b64encode(salt).decode(),
                     base64.b64encode(digest).decode()))


@dataclass(frozen=True)
class CardFileContent:
    """What goes on a card. Certificates are DER; private keys PKCS#8 PEM (test keys)."""

    auth_certificate: bytes
    auth_ca_certificate: bytes
    auth_private_key_pem: bytes
    sign_certificate: bytes | None
    sign_ca_certificate: bytes | None
    sign_private_key_pem: bytes | None
    my_number: str  # 12 digits
    name: str  # surname U+3000 given name
    address: str  # full-width digits, no postcode
    birth_date: str  # YYYYMMDD
    sex: str  # "1" / "2" / "9"
    label: str = ""
    municipality_code: str | None = None  # 5 digits (全国地方公共団体コード without check digit)
    card_expires_on: str | None = None  # YYYYMMDD, the card's own expiry


def card_json(content: CardFileContent, *, pin: str, password: str, kenhojo_pin: str) -> dict[str, Any]:
    """The card file as a JSON object; the secrets are turned into verifiers here."""

    def b64(value: bytes | None) -> str | None:
        return None if value is None else base64.b64encode(value).decode()

    def pem(value: bytes | None) -> str | None:
        return None if value is None else value.decode("ascii")

    # The sign password's EF exists even on a card without a signing certificate (under 15).
    pins = {
        "auth": {"verifier": pin_verifier(pin), "max_tries": AUTH_PIN_TRIES, "tries_left": AUTH_PIN_TRIES},
        "sign": {"verifier": pin_verifier(password), "max_tries": SIGN_PASSWORD_TRIES,
                 "tries_left": SIGN_PASSWORD_TRIES},
        "kenhojo": {"verifier": pin_verifier(kenhojo_pin), "max_tries": KENHOJO_PIN_TRIES,
                    "tries_left": KENHOJO_PIN_TRIES},
    }
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "label": content.label,
        "atr": ATR,
        "jpki": {
            "token_label": TOKEN_LABEL,
            "auth_certificate": b64(content.auth_certificate),
            "auth_ca_certificate": b64(content.auth_ca_certificate),
            "auth_private_key": pem(content.auth_private_key_pem),
            "sign_certificate": b64(content.sign_certificate),
            "sign_ca_certificate": b64(content.sign_ca_certificate),
            "sign_private_key": pem(content.sign_private_key_pem),
        },
        "kenhojo": {
            "my_number": content.my_number,
            "name": content.name,
            "address": content.address,
            "birth_date": content.birth_date,
            "sex": content.sex,
        },
        "pins": pins,
        **_card_face(content),
    }


def _card_face(content: CardFileContent) -> dict[str, Any]:
    # Optional object (README.md "The card file"): readers that predate it ignore it.
    if content.municipality_code is None and content.card_expires_on is None:
        return {}
    return {"card_face": {"municipality_code": content.municipality_code,
                          "expires_on": content.card_expires_on}}


def write_card_file(path: Path, content: CardFileContent, *, pin: str, password: str,
                    kenhojo_pin: str, overwrite: bool = False) -> None:
    """Write the card atomically and durably, mode 0600.

    Raises FileExistsError if `path` exists and `overwrite` is False, OSError on I/O errors;
    a failure leaves no partial file behind.
    """
    payload = json.dumps(card_json(content, pin=pin, password=password, kenhojo_pin=kenhojo_pin),
                         ensure_ascii=False, indent=1).encode("utf-8")
    folder = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp_name, path)
        else:
            os.link(tmp_name, path)  # fails with FileExistsError instead of replacing a card
            os.unlink(tmp_name)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
