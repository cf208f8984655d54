"""The card file: one JSON file that *is* a virtual My Number card's chip.

It holds the card's keys and certificates, the basic four items (基本4情報), the My Number,
PIN verifiers and retry counters. The issuing service writes these files and the virtual
card reads and updates them, both through this one module; the format is documented in
README.md ("The card file").

Writes are atomic and durable (temp file, fsync, rename, fsync of the folder), so a crash
leaves either the old or the new card, never half of one; the virtual card writes a wrong
PIN's count *before* it answers, so a crash never gives anyone an extra try.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from konbini_common.durable import write_atomic

FORMAT_NAME = "konbini-kiosk card file"
FORMAT_VERSION = 1
DEFAULT_ATR = "3BE000FF8131FE4514"  # jpki.md §9.1: the contact ATR in OpenSC's jpki table
DEFAULT_TOKEN_LABEL = "JPKIAPICCTOKEN2"  # jpki.md §2.1: physical My Number card
AUTH_PIN_TRIES = 3  # jpki.md §2: EF 0018, 3 tries
SIGN_PASSWORD_TRIES = 5  # jpki.md §2: EF 001B, 5 tries
KENHOJO_PIN_TRIES = 3  # jpki.md §6: EF 0011, 3 tries
# A 4-digit PIN has 10,000 values, so no verifier makes an offline guess expensive; the
# verifier exists so that the PIN itself is never on disk. The count is kept modest because
# the card checks it on every VERIFY and a user authentication should take milliseconds.
PBKDF2_ITERATIONS = 2_000
# A bound on what a card file may ask for: the card runs the verifier on every VERIFY, so a
# file naming billions of iterations would hang the reader (and the kiosk) on one PIN.
MAX_PBKDF2_ITERATIONS = 200_000


class CardFileError(Exception):
    """A card file that is missing, unreadable or not in this format."""


def make_verifier(
    secret: str, *, iterations: int = PBKDF2_ITERATIONS, salt: Callable[[int], bytes] = secrets.token_bytes
) -> str:
    """A salted PBKDF2-SHA256 verifier string: `pbkdf2-sha256$ITER$SALT$HASH` (base64);
    `salt(16)` gives the salt (a seeded source only for repeatable demo data)."""
    salt_bytes = salt(16)
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode("ascii"), salt_bytes, iterations)
    return "$".join(
        ("pbkdf2-sha256", str(iterations), base64.b64encode(salt_bytes).decode(), base64.b64encode(digest).decode())
    )


def check_verifier(verifier: str, candidate: bytes) -> bool:
    """True if `candidate` (the bytes a VERIFY carried) matches; constant-time compare."""
    try:
        scheme, iterations, salt_b64, hash_b64 = verifier.split("$")
        rounds = int(iterations)
        if scheme != "pbkdf2-sha256" or not 1 <= rounds <= MAX_PBKDF2_ITERATIONS:
            return False
        salt = base64.b64decode(salt_b64)
        expected = base64.b64decode(hash_b64)
        digest = hashlib.pbkdf2_hmac("sha256", candidate, salt, rounds)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)


def check_verifier_format(verifier: str) -> None:
    """Raises ValueError unless `verifier` is `pbkdf2-sha256$ITER$SALT$HASH` with ITER in
    1..MAX_PBKDF2_ITERATIONS and SALT and HASH in base64."""
    scheme, iterations, salt_b64, hash_b64 = verifier.split("$")  # ValueError unless 4 parts
    if scheme != "pbkdf2-sha256":
        raise ValueError("unknown PIN verifier scheme")
    if not iterations.isascii() or not iterations.isdigit() or not 1 <= int(iterations) <= MAX_PBKDF2_ITERATIONS:
        raise ValueError(f"PIN verifier iterations not in 1..{MAX_PBKDF2_ITERATIONS}")
    base64.b64decode(salt_b64, validate=True)
    base64.b64decode(hash_b64, validate=True)


@dataclass
class PinRecord:
    """One PIN or password: its verifier and its consecutive-failure counter."""

    verifier: str
    max_tries: int
    tries_left: int

    @property
    def blocked(self) -> bool:
        return self.tries_left <= 0

    def to_json(self) -> dict[str, Any]:
        return {"verifier": self.verifier, "max_tries": self.max_tries, "tries_left": self.tries_left}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> PinRecord:
        """Raises KeyError, TypeError or ValueError (a verifier out of format or bounds)."""
        verifier = raw["verifier"]
        if not isinstance(verifier, str):
            raise TypeError("a PIN verifier is not a string")
        check_verifier_format(verifier)
        return cls(verifier, int(raw["max_tries"]), int(raw["tries_left"]))

    @classmethod
    def new(cls, secret: str, max_tries: int, *, salt: Callable[[int], bytes] = secrets.token_bytes) -> PinRecord:
        return cls(make_verifier(secret, salt=salt), max_tries, max_tries)


def new_card_pins(
    *, pin: str, password: str, kenhojo_pin: str, salt: Callable[[int], bytes] = secrets.token_bytes
) -> dict[str, PinRecord]:
    """The PIN records of a new card, every counter full; only verifiers are kept.

    The sign password's EF exists even on a card without a signing certificate (under 15).
    """
    return {
        "auth": PinRecord.new(pin, AUTH_PIN_TRIES, salt=salt),
        "sign": PinRecord.new(password, SIGN_PASSWORD_TRIES, salt=salt),
        "kenhojo": PinRecord.new(kenhojo_pin, KENHOJO_PIN_TRIES, salt=salt),
    }


@dataclass
class KenhojoData:
    """券面事項入力補助AP contents: My Number and the basic four items."""

    my_number: str  # 12 ASCII digits
    name: str  # surname + U+3000 + given name
    address: str  # full-width digits and hyphens, no postcode
    birth_date: str  # YYYYMMDD (Gregorian)
    sex: str  # "1" male, "2" female, "9" not applicable

    def to_json(self) -> dict[str, str]:
        return {
            "my_number": self.my_number,
            "name": self.name,
            "address": self.address,
            "birth_date": self.birth_date,
            "sex": self.sex,
        }


@dataclass(frozen=True)
class CardFaceData:
    """Optional `card_face` object: what the card's other APs carry about the card itself."""

    municipality_code: str | None = None  # 5 digits, the issuing municipality (取手市 08217)
    expires_on: str | None = None  # YYYYMMDD, the card's own expiry

    def to_json(self) -> dict[str, str | None]:
        return {"municipality_code": self.municipality_code, "expires_on": self.expires_on}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> CardFaceData:
        def text(key: str) -> str | None:
            value = raw.get(key)
            return None if value is None else str(value)

        return cls(municipality_code=text("municipality_code"), expires_on=text("expires_on"))


@dataclass
class CardFile:
    """The parsed card file. Certificates are DER bytes; keys are PKCS#8 PEM bytes."""

    auth_certificate: bytes
    auth_ca_certificate: bytes
    auth_private_key: bytes
    kenhojo: KenhojoData
    pins: dict[str, PinRecord]  # "auth" (4 digits, 3), "sign" (6-16 A-Z0-9, 5), "kenhojo" (4 digits, 3)
    sign_certificate: bytes | None = None
    sign_ca_certificate: bytes | None = None
    sign_private_key: bytes | None = None
    atr: bytes = field(default_factory=lambda: bytes.fromhex(DEFAULT_ATR))
    token_label: str = DEFAULT_TOKEN_LABEL
    label: str = ""
    card_face: CardFaceData | None = None  # absent in card files written before it existed

    # -- JSON ---------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        def b64(value: bytes | None) -> str | None:
            return None if value is None else base64.b64encode(value).decode()

        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "label": self.label,
            "atr": self.atr.hex().upper(),
            "jpki": {
                "token_label": self.token_label,
                "auth_certificate": b64(self.auth_certificate),
                "auth_ca_certificate": b64(self.auth_ca_certificate),
                "auth_private_key": self.auth_private_key.decode("ascii"),
                "sign_certificate": b64(self.sign_certificate),
                "sign_ca_certificate": b64(self.sign_ca_certificate),
                "sign_private_key": None if self.sign_private_key is None else self.sign_private_key.decode("ascii"),
            },
            "kenhojo": self.kenhojo.to_json(),
            "pins": {name: record.to_json() for name, record in self.pins.items()},
            **({} if self.card_face is None else {"card_face": self.card_face.to_json()}),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> CardFile:
        """Raises CardFileError for anything that is not a version-1 card file."""
        if raw.get("format") != FORMAT_NAME or raw.get("version") != FORMAT_VERSION:
            raise CardFileError("not a version-1 konbini-kiosk card file")
        try:
            jpki = raw["jpki"]

            def unb64(value: str | None) -> bytes | None:
                return None if value is None else base64.b64decode(value, validate=True)

            sign_key = jpki.get("sign_private_key")
            return cls(
                auth_certificate=base64.b64decode(jpki["auth_certificate"], validate=True),
                auth_ca_certificate=base64.b64decode(jpki["auth_ca_certificate"], validate=True),
                auth_private_key=jpki["auth_private_key"].encode("ascii"),
                sign_certificate=unb64(jpki.get("sign_certificate")),
                sign_ca_certificate=unb64(jpki.get("sign_ca_certificate")),
                sign_private_key=None if sign_key is None else sign_key.encode("ascii"),
                kenhojo=KenhojoData(**{k: str(v) for k, v in raw["kenhojo"].items()}),
                pins={name: PinRecord.from_json(rec) for name, rec in raw["pins"].items()},
                atr=bytes.fromhex(raw.get("atr", DEFAULT_ATR)),
                token_label=str(jpki.get("token_label", DEFAULT_TOKEN_LABEL)),
                label=str(raw.get("label", "")),
                card_face=None if raw.get("card_face") is None else CardFaceData.from_json(raw["card_face"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError, RecursionError) as exc:
            raise CardFileError(f"card file is damaged: {exc.__class__.__name__}") from exc

    # -- disk ---------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CardFile:
        """Read a card file. Raises CardFileError (missing, unreadable, damaged)."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise CardFileError(f"cannot read card file {path}: {exc.strerror}") from exc
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise CardFileError(f"card file {path} is not UTF-8 text") from None
        try:
            raw = json.loads(text)
        except json.JSONDecodeError:
            raise CardFileError(f"card file {path} is not JSON") from None
        except RecursionError:  # json recurses once per nesting level: "[[[[..." exhausts the stack
            raise CardFileError(f"card file {path} is nested too deeply to be a card file") from None
        if not isinstance(raw, dict):
            raise CardFileError(f"card file {path} is not a JSON object")
        return cls.from_json(raw)

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = True) -> None:
        """Write atomically and durably, readable by the owner only.

        Raises FileExistsError if `path` exists and `overwrite` is False (a card is never
        replaced by accident), OSError on I/O errors; a failure leaves no partial file.
        """
        payload = json.dumps(self.to_json(), ensure_ascii=False, indent=1).encode("utf-8")
        write_atomic(Path(path), payload, replace=overwrite)
