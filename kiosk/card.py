"""The kiosk's card reader: presence events and the two card operations a visit needs.

`open_reader("pcsc")`, `open_reader("pcsc:Virtual PCD 00 00")` or
`open_reader("virtual:path/to/card.json")` or `open_reader("tray")` (in-process, empty
until the operator's card tray places a demo card: the browser kiosk). The PC/SC reader is the real path (a real card,
or a virtual card inserted into pcscd through the vpcd bridge); the in-process virtual
reader serves the headless driver and the load generator, which run many kiosks at once.
"""

from __future__ import annotations

import logging
import os
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cardreader.jpki import JpkiClient
from cardreader.status import NoCardError
from cardreader.transport import Transport

if TYPE_CHECKING:  # imported where a card is opened: pyscard-free start for the tray
    from cardreader.inprocess import VirtualCardTransport
    from cardreader.virtualcard import VirtualCard

logger = logging.getLogger(__name__)


class ReaderSpecError(ValueError):
    """A --reader value that is neither `pcsc[:NAME]` nor `virtual:CARDFILE`."""


@dataclass(frozen=True)
class CardInfo:
    certificate: bytes = field(repr=False)  # 利用者証明用電子証明書 (DER)
    tries_left: int


@dataclass(frozen=True)
class Signed:
    certificate: bytes = field(repr=False)
    signature: bytes = field(repr=False)


class CardReader(ABC):
    """One reader. Card operations raise cardreader.status.CardError subclasses
    (WrongPinError, PinLockedError, CardRemovedError, NoCardError, ReaderError ...)."""

    name: str

    @abstractmethod
    def card_present(self) -> bool:
        """Whether a card is on the reader now. Raises ReaderError."""

    @abstractmethod
    def wait_change(self, timeout: float) -> bool | None:
        """Wait for the card to be placed (True) or removed (False); None after `timeout`.
        The first call reports a card already there. Raises ReaderError."""

    @abstractmethod
    def _transport(self) -> Transport:
        """A fresh, unconnected transport to the card."""

    def read(self) -> CardInfo:
        """The auth certificate and the PIN's remaining tries (no PIN needed)."""
        with self._transport() as transport:
            client = JpkiClient(transport)
            return CardInfo(client.read_auth_certificate(), client.auth_pin_tries_left())

    def sign(self, pin: str, challenge: bytes) -> Signed:
        """The card verifies `pin` and signs SHA-256(challenge). The PIN is used for this
        call only. Raises WrongPinError(tries_left), PinLockedError, CardRemovedError."""
        with self._transport() as transport:
            result = JpkiClient(transport).authenticate(pin, challenge)
        return Signed(result.certificate, result.signature)

    def close(self) -> None:  # noqa: B027 - most readers hold nothing to release
        """Release the reader."""


class PcscCardReader(CardReader):
    """A PC/SC reader (pcscd): `name=None` watches the first reader."""

    def __init__(self, name: str | None = None) -> None:
        from cardreader.pcsc import ReaderMonitor

        self._monitor = ReaderMonitor(name)
        self.name = self._monitor.reader

    def card_present(self) -> bool:
        return self._monitor.card_present

    def wait_change(self, timeout: float) -> bool | None:
        from cardreader.pcsc import CardEvent

        event = self._monitor.next_event(timeout)
        return None if event is None else event is CardEvent.PLACED

    def _transport(self) -> Transport:
        from cardreader.pcsc import PcscTransport

        return PcscTransport(self.name)

    def close(self) -> None:
        self._monitor.cancel()
        self._monitor.close()


class VirtualCardReader(CardReader):
    """An in-process reader holding one virtual card file; `place()`/`take()` move it."""

    def __init__(self, card_path: str, *, placed: bool = True) -> None:
        from cardreader.inprocess import VirtualCardTransport

        self.name = "virtual"
        self._shared = VirtualCardTransport.from_path(card_path)
        self._changed = threading.Condition()
        self._present = placed
        self._reported: bool | None = None

    @property
    def card(self) -> VirtualCard:
        """The virtual card on this reader (to arm faults on it: cardreader.virtualcard.faults)."""
        return self._shared.card

    def place(self) -> None:
        with self._changed:
            self._present = True
            self._shared.insert()
            self._changed.notify_all()

    def take(self) -> None:
        with self._changed:
            self._present = False
            self._shared.remove()
            self._changed.notify_all()

    def card_present(self) -> bool:
        # A card pulled out by a fault (faults.py) has left the reader under the kiosk.
        return self._present and self._shared.inserted

    def wait_change(self, timeout: float) -> bool | None:
        with self._changed:
            self._changed.wait_for(lambda: self._present != self._reported, timeout)
            if self._present == self._reported:
                return None
            first = self._reported is None
            self._reported = self._present
            if first and not self._present:
                return None  # nothing was ever there: no removal to report
            return self._present

    def _transport(self) -> Transport:
        return _Borrowed(self._shared)

    def close(self) -> None:
        with self._changed:
            self._changed.notify_all()


class TrayReader(CardReader):
    """An in-process reader that starts empty; the operator's card tray puts any demo card
    file on it and takes it off (`place()`/`take()`). The browser kiosk's reader: a browser
    session has no reader hardware and shares no pcscd reader with the other sessions."""

    def __init__(self) -> None:
        self.name = "virtual tray"
        self._changed = threading.Condition()
        self._card: VirtualCardTransport | None = None
        self._placements = 0  # tells one card swapped for another from the same card left on
        self._reported: tuple[int, bool] | None = None

    def place(self, card_path: str | os.PathLike[str]) -> None:
        """Put the card of `card_path` on the reader (taking off the one there).
        Raises konbini_common.cardfile.CardFileError for a missing or damaged file."""
        from cardreader.inprocess import VirtualCardTransport

        card = VirtualCardTransport.from_path(card_path)
        with self._changed:
            if self._card is not None:
                self._card.remove()
            self._card = card
            self._placements += 1
            self._changed.notify_all()

    def take(self) -> None:
        with self._changed:
            if self._card is not None:
                self._card.remove()
            self._card = None
            self._changed.notify_all()

    def _state(self) -> tuple[int, bool]:
        return self._placements, self._card is not None

    def card_present(self) -> bool:
        return self._card is not None

    def wait_change(self, timeout: float) -> bool | None:
        with self._changed:
            self._changed.wait_for(lambda: self._state() != self._reported, timeout)
            state, previous = self._state(), self._reported
            if state == previous:
                return None
            if previous is not None and previous[1] and state[1]:
                # One card swapped for another between two waits: the first card's removal
                # is reported now, the new card's placement on the next wait.
                self._reported = (previous[0], False)
                return False
            self._reported = state
            if previous is None and not state[1]:
                return None  # nothing was ever there: no removal to report
            return state[1]

    def _transport(self) -> Transport:
        card = self._card
        if card is None:
            raise NoCardError("no card is on the tray's reader")
        return _Borrowed(card)

    def close(self) -> None:
        with self._changed:
            self._changed.notify_all()


class _Borrowed(Transport):
    """The shared in-process transport, connected per operation like a PC/SC session."""

    def __init__(self, inner: Transport) -> None:
        self._inner = inner

    @property
    def atr(self) -> bytes:
        return self._inner.atr

    def connect(self) -> None:
        self._inner.connect()

    def disconnect(self) -> None:
        self._inner.disconnect()

    def _transmit_raw(self, command: bytes) -> bytes:
        return self._inner._transmit_raw(command)


def open_reader(spec: str) -> CardReader:
    """A reader from `pcsc`, `pcsc:NAME`, `virtual:CARDFILE` or `tray`. Raises ReaderSpecError,
    cardreader.status.ReaderError (PC/SC unavailable), konbini_common.cardfile.CardFileError."""
    kind, _, rest = spec.partition(":")
    if kind == "pcsc":
        return PcscCardReader(rest or None)
    if kind == "virtual" and rest:
        return VirtualCardReader(rest)
    if kind == "tray" and not rest:
        return TrayReader()
    raise ReaderSpecError(f"--reader must be pcsc[:NAME], virtual:CARDFILE or tray, not {spec!r}")
