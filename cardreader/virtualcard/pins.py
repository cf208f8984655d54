"""PIN EFs (暗証番号) and their retry counters: VERIFY, the empty VERIFY, CHANGE REFERENCE DATA.

Counting follows jpki.md §4: failures are consecutive, a correct entry resets the counter,
the failure that exhausts the counter answers 63 C0 and every VERIFY after it 69 84. The
counter is written to the card file *before* the answer leaves the card.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from cardreader.status import SW
from cardreader.virtualcard.store import CardStore, CardStoreError
from konbini_common.cardfile import PinRecord, check_verifier, make_verifier

logger = logging.getLogger(__name__)

MAX_PIN_BYTES = 16  # jpki.md §4.2: VERIFY data is 1..16 bytes
MEMORY_FAILURE = 0x6581  # ISO 7816-4: memory failure (the counter could not be written)
WRONG_DATA = 0x6A80  # ISO 7816-4: incorrect parameters in the data field


@dataclass(frozen=True)
class PinFormat:
    """What CHANGE REFERENCE DATA accepts as a new secret."""

    min_length: int
    max_length: int
    characters: re.Pattern[bytes]

    def check(self, secret: bytes) -> int:
        """90 00, or 67 00 for a wrong length, 6A 80 for a wrong character."""
        if not self.min_length <= len(secret) <= self.max_length:
            return SW.WRONG_LENGTH
        return SW.OK if self.characters.fullmatch(secret) else WRONG_DATA


FOUR_DIGITS = PinFormat(4, 4, re.compile(rb"[0-9]+"))  # 暗証番号: 4 digits
SIGN_PASSWORD = PinFormat(6, 16, re.compile(rb"[A-Z0-9]+"))  # jpki.md §4.1: 6-16 upper-case alnum


class PinSource(Enum):
    """Where a PIN EF's secret and counter live."""

    STORED = "stored"  # a record of the card file (auth, sign, kenhojo)
    DERIVED = "derived"  # a secret the card file implies (照合番号A = My Number); record made on first use
    ABSENT = "absent"  # the card file does not hold this secret: VERIFY answers 6A 88
    BLOCKED = "blocked"  # blocked at issue (券面事項入力補助AP 0012): 63 C0 / 69 84
    UNLIMITED = "unlimited"  # a key without retry limit whose secret is absent: 63 00


@dataclass(frozen=True)
class PinEf:
    """A PIN or password EF: the target of VERIFY while it is the current EF."""

    fid: int
    record: str  # name of its record in the card file's "pins"
    source: PinSource
    max_tries: int = 3
    derived_secret: str | None = None
    new_pin_format: PinFormat | None = None  # None: CHANGE REFERENCE DATA refused


class PinBook:
    """The card's PIN state over a CardStore. Methods return status words."""

    def __init__(self, store: CardStore) -> None:
        self._store = store

    def tries_left(self, pin: PinEf) -> int:
        if pin.source is PinSource.BLOCKED:
            return 0
        record = self._store.pin(pin.record)
        return pin.max_tries if record is None else max(record.tries_left, 0)

    def status(self, pin: PinEf) -> int:
        """The empty VERIFY (case 1): 63 Cx, also after a success; 63 00 without a limit."""
        if pin.source is PinSource.UNLIMITED:
            return SW.VERIFY_FAILED_UNLIMITED
        self._store.refresh()
        return SW.tries(self.tries_left(pin))

    def verify(self, pin: PinEf, candidate: bytes) -> int:
        """Compare `candidate` with the secret; 90 00, 63 Cx, 69 84, 6A 88 or 65 81."""
        if pin.source is PinSource.UNLIMITED:
            return SW.VERIFY_FAILED_UNLIMITED
        if pin.source is PinSource.BLOCKED:
            return SW.REFERENCE_DATA_LOCKED
        if pin.source is PinSource.ABSENT:
            return SW.REFERENCED_DATA_NOT_FOUND

        def attempt(pins: dict[str, PinRecord]) -> tuple[int, bool]:
            record = pins.get(pin.record)
            created = record is None
            if record is None:
                if pin.derived_secret is None:
                    return SW.REFERENCED_DATA_NOT_FOUND, False
                record = PinRecord.new(pin.derived_secret, pin.max_tries)
                pins[pin.record] = record
            if record.blocked:
                return SW.REFERENCE_DATA_LOCKED, False
            if check_verifier(record.verifier, candidate):
                # Write only when something changed: a correct PIN costs no fsync.
                changed = created or record.tries_left != record.max_tries
                record.tries_left = record.max_tries
                return SW.OK, changed
            record.tries_left -= 1
            return SW.tries(record.tries_left), True

        return self._update(attempt)

    def change(self, pin: PinEf, new_secret: bytes) -> int:
        """Set a new secret (the caller checked that the PIN EF is verified)."""
        if pin.new_pin_format is None or pin.source is not PinSource.STORED:
            return SW.CONDITIONS_NOT_SATISFIED
        refusal = pin.new_pin_format.check(new_secret)
        if refusal != SW.OK:
            return refusal

        def replace(pins: dict[str, PinRecord]) -> tuple[int, bool]:
            record = pins.get(pin.record)
            if record is None:
                return SW.REFERENCED_DATA_NOT_FOUND, False
            pins[pin.record] = PinRecord(make_verifier(new_secret.decode("ascii")), record.max_tries, record.max_tries)
            return SW.OK, True

        return self._update(replace)

    def _update(self, change: Callable[[dict[str, PinRecord]], tuple[int, bool]]) -> int:
        try:
            return int(self._store.update_pins(change))
        except CardStoreError as exc:
            # Neither 90 00 nor 63 Cx: the card never states a result the disk does not
            # hold, and a right and a wrong guess get the same answer while it fails.
            logger.error("PIN counter could not be saved: %s", exc)
            return MEMORY_FAILURE
