"""A virtual card for a test: in a vpcd reader of the running pcscd (PC/SC programs see it,
as they would a real card), or in-process for the kiosk's own virtual reader.

The card file is the card: its PIN counters live in it (a wrong PIN is written before the
card answers), so `tries_left`, `lock_pin` and `reset_pin` read and write the file the way
`mynacard reset-pin` does, and the card sees the change at its next command.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cardreader.virtualcard import VirtualCard, VpcdBridge
from cardreader.virtualcard.faults import FaultPlan
from cardreader.virtualcard.store import CardStore
from konbini_common.cardfile import CardFile, PinRecord, make_verifier

if TYPE_CHECKING:
    from kiosk.card import CardReader, VirtualCardReader
    from konbini_testkit.vpcd import VpcdSlot

AUTH = "auth"  # 利用者証明用暗証番号


class HarnessCard:
    """One virtual card, inserted when made. `slot` None: in-process (no pcscd)."""

    def __init__(self, path: Path, pin: str, *, slot: VpcdSlot | None = None) -> None:
        """Load the card and insert it. Raises konbini_common.cardfile.CardFileError,
        cardreader.status.ReaderError (vpcd unavailable)."""
        self.path = Path(path)
        self.pin = pin
        self.slot = slot
        self._bridge: VpcdBridge | None = None
        self._reader: VirtualCardReader | None = None
        if slot is None:
            from kiosk.card import VirtualCardReader

            self._reader = VirtualCardReader(str(self.path))
            self.card = self._reader.card
        else:
            self.card = VirtualCard(self.path)
            self._bridge = VpcdBridge(self.card, host=slot.host, port=slot.port)
            self.insert()

    def __repr__(self) -> str:  # no PIN
        where = "in-process" if self.slot is None else self.slot.reader
        return f"HarnessCard({self.path.name}, {where})"

    @property
    def transport(self) -> str:
        """ "pcsc" (in a vpcd reader) or "inprocess"."""
        return "inprocess" if self.slot is None else "pcsc"

    @property
    def reader_name(self) -> str | None:
        """The PC/SC reader the card is in (None in-process)."""
        return None if self.slot is None else self.slot.reader

    @property
    def faults(self) -> FaultPlan:
        """The card's faults on demand (cardreader.virtualcard.faults)."""
        return self.card.faults

    @property
    def serial(self) -> str:
        """The serial of its user-authentication certificate, as the service writes it."""
        from cryptography import x509

        serial = format(x509.load_der_x509_certificate(CardFile.load(self.path).auth_certificate).serial_number, "X")
        return serial.zfill(len(serial) + len(serial) % 2)

    @property
    def inserted(self) -> bool:
        if self._bridge is not None:
            return self._bridge.inserted
        assert self._reader is not None
        return self._reader.card_present()

    # -- moving the card -------------------------------------------------------------------
    def remove(self) -> None:
        """Take the card off the reader; returns once PC/SC clients see it gone."""
        if self._bridge is not None:
            from cardreader.pcsc import wait_for_removal

            self._bridge.remove()
            assert self.slot is not None
            wait_for_removal(self.slot.reader, timeout=5.0)
        elif self._reader is not None:
            self._reader.take()

    def insert(self) -> None:
        """Place the card on the reader; returns once PC/SC clients see it. Raises
        cardreader.status.ReaderError."""
        if self._bridge is not None:
            from cardreader.pcsc import wait_for_card, wait_for_removal

            assert self.slot is not None
            if not self._bridge.inserted:
                wait_for_removal(self.slot.reader, timeout=5.0)  # the reader noticed the last removal
                self._bridge.insert()
            wait_for_card(self.slot.reader, timeout=5.0)
        elif self._reader is not None:
            self._reader.place()

    def reader(self) -> CardReader:
        """A kiosk card reader holding this card (PC/SC when it is in a vpcd reader)."""
        if self._reader is not None:
            return self._reader
        from kiosk.card import PcscCardReader

        return PcscCardReader(self.reader_name)

    # -- the PIN -----------------------------------------------------------------------------
    @property
    def tries_left(self) -> int:
        """Tries left of the user-authentication PIN (0: locked)."""
        return CardFile.load(self.path).pins[AUTH].tries_left

    def lock_pin(self) -> None:
        """Lock the user-authentication PIN, as three wrong PINs would."""

        def lock(pins: dict[str, PinRecord]) -> tuple[None, bool]:
            record = pins[AUTH]
            pins[AUTH] = PinRecord(record.verifier, record.max_tries, 0)
            return None, True

        CardStore.open(self.path).update_pins(lock)

    def reset_pin(self, new_pin: str | None = None) -> None:
        """The city office's reset: a new PIN (default: the current one) and a full counter."""
        secret = self.pin if new_pin is None else new_pin

        def reset(pins: dict[str, PinRecord]) -> tuple[None, bool]:
            record = pins[AUTH]
            pins[AUTH] = PinRecord(make_verifier(secret), record.max_tries, record.max_tries)
            return None, True

        CardStore.open(self.path).update_pins(reset)
        self.pin = secret

    def close(self) -> None:
        """Take the card out for good (safe to call twice)."""
        if self._bridge is not None and self._bridge.inserted:
            self._bridge.remove()
        if self._reader is not None:
            self._reader.close()
