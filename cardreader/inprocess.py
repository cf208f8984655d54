"""The in-process transport: APDUs go straight to a VirtualCard in this process.

Used by tests, the benchmark and `mynacard ... --card CARDFILE`. It behaves like a reader
where it matters to a client: it must be connected first, a simulated removal makes every
command fail with CardRemovedError until the card is inserted and connected again, and
disconnecting resets the card (so a verified PIN does not outlive the session). A card told
to misbehave (virtualcard/faults.py) leaves this reader when pulled out, and a card that
refuses to power on makes `connect()` fail, as a PC/SC reader would.
"""

from __future__ import annotations

import os
import threading

from cardreader.status import CardRemovedError, NoCardError, UnresponsiveCardError
from cardreader.transport import Transport
from cardreader.virtualcard import VirtualCard
from cardreader.virtualcard.faults import CardPulledOutError, PowerOnRefusedError


class VirtualCardTransport(Transport):
    """A transport to a VirtualCard object (or, via `from_path`, a card file)."""

    def __init__(self, card: VirtualCard) -> None:
        self._card = card
        self._lock = threading.Lock()
        self._inserted = True
        self._connected = False
        self._lost = False  # removed since the last connect: the session is gone
        self._atr = b""

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], *, clear_on_reselect: bool = False) -> VirtualCardTransport:
        """A transport to a new VirtualCard over the card file at `path`.
        Raises konbini_common.cardfile.CardFileError for a missing or damaged file."""
        return cls(VirtualCard(path, clear_on_reselect=clear_on_reselect))

    @property
    def card(self) -> VirtualCard:
        return self._card

    @property
    def atr(self) -> bytes:
        if not self._connected:
            raise NoCardError("not connected to a card")
        return self._atr

    @property
    def inserted(self) -> bool:
        return self._inserted

    def connect(self) -> None:
        """Power the card on. Raises NoCardError while the card is removed,
        UnresponsiveCardError when it gives no answer to reset."""
        with self._lock:
            if not self._inserted:
                raise NoCardError("no card is in the (simulated) reader")
            if not self._connected:
                try:
                    self._atr = self._card.power_on()
                except PowerOnRefusedError as exc:
                    raise UnresponsiveCardError("the card gave no answer to reset") from exc
                self._connected = True
                self._lost = False

    def disconnect(self) -> None:
        with self._lock:
            if self._connected and self._inserted:
                self._card.power_off()
            self._connected = False

    def remove(self) -> None:
        """Simulate pulling the card: it loses power; commands raise CardRemovedError."""
        with self._lock:
            self._inserted = False
            self._lost = self._lost or self._connected
            self._connected = False
            self._card.power_off()

    def insert(self) -> None:
        """Simulate placing the card again; `connect()` must follow, as with a reader."""
        with self._lock:
            self._inserted = True

    def _transmit_raw(self, command: bytes) -> bytes:
        # No lock here: VirtualCard.process is thread-safe, and the connected check is a
        # plain read; a removal racing a command is exactly what a real reader allows.
        if not self._connected:
            if self._lost or not self._inserted:
                raise CardRemovedError()
            raise NoCardError("not connected to a card")
        try:
            return self._card.process(command)
        except CardPulledOutError as exc:
            self.remove()
            if exc.answer is None:
                raise CardRemovedError("the card was pulled out during the command") from None
            return exc.answer
        except PowerOnRefusedError:
            raise UnresponsiveCardError("the card gave no answer to reset") from None
