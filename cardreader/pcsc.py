"""PC/SC readers through pyscard: the only module that imports `smartcard`.

It uses pyscard's thin `smartcard.scard` layer (the PC/SC C API) rather than its object
layer: the codes it returns map one to one onto our exceptions, and a transmit costs one C
call (the object layer adds observers and list conversions to every APDU).

Errors: no pcscd → ReaderError; unknown reader → ReaderError; no card → NoCardError; the
card pulled (also mid-command, which pcscd reports as success with an empty answer) →
CardRemovedError.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from smartcard import scard

from cardreader.status import CardError, CardRemovedError, NoCardError, ReaderError, UnresponsiveCardError
from cardreader.transport import Transport

logger = logging.getLogger(__name__)

# SCARD_E_NOT_TRANSACTED: the reader driver could not exchange the APDU; vpcd reports it
# for a card whose socket closed before pcscd's next presence poll noticed the removal.
_REMOVED = frozenset({scard.SCARD_W_REMOVED_CARD, scard.SCARD_W_RESET_CARD, scard.SCARD_E_NOT_TRANSACTED})
_NO_CARD = frozenset({scard.SCARD_E_NO_SMARTCARD, scard.SCARD_W_UNPOWERED_CARD})
_NO_SERVICE = frozenset({scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED})
_NO_READER = frozenset(
    {scard.SCARD_E_UNKNOWN_READER, scard.SCARD_E_READER_UNAVAILABLE, scard.SCARD_E_NO_READERS_AVAILABLE}
)


_PIN_INS = frozenset({0x20, 0x24})  # VERIFY, CHANGE REFERENCE DATA


def _error(hresult: int, action: str) -> CardError:
    """The exception for a failed PC/SC call."""
    text = f"{action}: {scard.SCardGetErrorMessage(hresult).strip()}"
    if hresult in _REMOVED:
        return CardRemovedError(text)
    if hresult in _NO_CARD:
        return NoCardError(text)
    if hresult == scard.SCARD_W_UNRESPONSIVE_CARD:  # a card is there, but mute: not "no card"
        return UnresponsiveCardError(text)
    if hresult in _NO_SERVICE:
        return ReaderError("the PC/SC service (pcscd) is not running")
    return ReaderError(text)


class _Context:
    """One PC/SC context (pcsc-lite contexts are not to be shared between threads)."""

    def __init__(self) -> None:
        hresult, handle = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if hresult != scard.SCARD_S_SUCCESS:
            raise _error(hresult, "cannot reach the PC/SC service")
        self.handle = handle

    def readers(self) -> list[str]:
        hresult, names = scard.SCardListReaders(self.handle, [])
        if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        if hresult != scard.SCARD_S_SUCCESS:
            raise _error(hresult, "cannot list the card readers")
        return list(names)

    def state(self, reader: str, known: int, timeout: float | None) -> tuple[int, bytes] | None:
        """Wait until the reader's state differs from `known`: (state, ATR), or None on time-out."""
        ms = scard.INFINITE if timeout is None else max(0, int(timeout * 1000))
        hresult, states = scard.SCardGetStatusChange(self.handle, ms, [(reader, known)])
        if hresult == scard.SCARD_E_TIMEOUT:
            return None
        if hresult == scard.SCARD_E_CANCELLED:
            raise ReaderError("waiting for the card was cancelled")
        if hresult != scard.SCARD_S_SUCCESS:
            raise _error(hresult, f"cannot watch reader {reader!r}")
        _, event_state, atr = states[0]
        return event_state, bytes(atr)

    def cancel(self) -> None:
        scard.SCardCancel(self.handle)

    def release(self) -> None:
        if self.handle is not None:
            scard.SCardReleaseContext(self.handle)
            self.handle = None


def _card_present(state: int) -> bool:
    return bool(state & scard.SCARD_STATE_PRESENT) and not state & scard.SCARD_STATE_MUTE


def list_readers() -> list[str]:
    """Names of the PC/SC readers. Raises ReaderError when pcscd is not running."""
    context = _Context()
    try:
        return context.readers()
    finally:
        context.release()


def atr_protocols(atr: bytes) -> set[int]:
    """The transmission protocols (0 = T=0, 1 = T=1, ...) an ATR offers (ISO 7816-3 §8.2).
    T=0 is implied when the ATR names none."""
    protocols: set[int] = set()
    if len(atr) < 2:
        return {0}
    index = 1
    indicator = atr[1] >> 4  # Y1 of T0
    while True:
        index += bin(indicator & 0x7).count("1")  # TA, TB, TC present
        if not indicator & 0x8:  # no TD
            break
        if index + 1 >= len(atr):
            break
        td = atr[index + 1]
        protocols.add(td & 0x0F)
        indicator = td >> 4
        index += 1
    return protocols or {0}


def _protocol_for(atr: bytes) -> int:
    """T=1 when the ATR offers it (no GET RESPONSE dance), else T=0."""
    return scard.SCARD_PROTOCOL_T1 if 1 in atr_protocols(atr) else scard.SCARD_PROTOCOL_T0


class PcscTransport(Transport):
    """A card in a PC/SC reader. `reader=None` picks the first reader holding a card."""

    def __init__(self, reader: str | None = None) -> None:
        self._wanted_reader = reader
        self.reader: str | None = reader
        self._context: _Context | None = None
        self._card: int | None = None
        self._protocol = 0
        self._atr = b""
        self._lost = False  # the card was removed under this connection
        self._pin_verified = False  # a VERIFY succeeded since the last reset
        self._lock = threading.RLock()

    @property
    def atr(self) -> bytes:
        if self._card is None:
            raise NoCardError("not connected to a card")
        return self._atr

    def connect(self) -> None:
        """Connect in shared mode. Raises NoCardError, ReaderError."""
        with self._lock:
            if self._card is not None:
                return
            context = self._context or _Context()
            self._context = context
            reader, atr = self._find_reader(context)
            protocol = _protocol_for(atr)
            hresult, card, active = scard.SCardConnect(context.handle, reader, scard.SCARD_SHARE_SHARED, protocol)
            if hresult != scard.SCARD_S_SUCCESS:
                raise _error(hresult, f"cannot connect to the card in {reader!r}")
            self.reader, self._card, self._protocol, self._atr = reader, card, active, atr
            self._lost = False
            self._pin_verified = False
            logger.debug("connected to %r, ATR %s, protocol %d", reader, atr.hex().upper(), active)

    def _find_reader(self, context: _Context) -> tuple[str, bytes]:
        readers = context.readers()
        if not readers:
            raise ReaderError("no card reader is connected")
        if self._wanted_reader is not None:
            if self._wanted_reader not in readers:
                raise ReaderError(f"no reader named {self._wanted_reader!r}")
            candidates = [self._wanted_reader]
        else:
            candidates = readers
        for reader in candidates:
            current = context.state(reader, scard.SCARD_STATE_UNAWARE, 0)
            if current is not None and _card_present(current[0]):
                return reader, current[1]
        where = candidates[0] if self._wanted_reader else "any reader"
        raise NoCardError(f"no card in {where}")

    def disconnect(self) -> None:
        with self._lock:
            if self._card is not None:
                # Reset when a PIN was verified in this session: it must not stay usable by
                # others. Otherwise leave the card: a reset sent just after the card was
                # pulled (before pcscd noticed) makes vpcd miss the next card placed there.
                reset = self._pin_verified and not self._lost
                disposition = scard.SCARD_RESET_CARD if reset else scard.SCARD_LEAVE_CARD
                scard.SCardDisconnect(self._card, disposition)
                self._card = None

    def close(self) -> None:
        with self._lock:
            self.disconnect()
            if self._context is not None:
                self._context.release()
                self._context = None

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the card with SCARD_SHARE_EXCLUSIVE; on leaving, reset it (clearing any
        verified PIN) and share it again. Raises ReaderError (another process holds the
        card), CardRemovedError, NoCardError."""
        # New handles rather than SCardReconnect: pcsc-lite 1.9 keeps the reader locked
        # for other contexts after a reconnect from exclusive back to shared.
        self._replace_handle(scard.SCARD_SHARE_EXCLUSIVE, scard.SCARD_LEAVE_CARD)
        try:
            yield
        finally:
            try:
                self._replace_handle(scard.SCARD_SHARE_SHARED, scard.SCARD_RESET_CARD)
            except CardError:
                # The card is gone or unusable: nothing verified remains to protect, and
                # the error that brought us here (if any) is the one to report.
                logger.debug("could not share the card again after exclusive use", exc_info=True)

    def _replace_handle(self, share: int, disposition: int) -> None:
        with self._lock:
            if self._card is None or self._context is None or self.reader is None:
                raise NoCardError("not connected to a card")
            if self._lost:
                disposition = scard.SCARD_LEAVE_CARD  # see disconnect()
            scard.SCardDisconnect(self._card, disposition)
            self._card = None
            if disposition == scard.SCARD_RESET_CARD:
                self._pin_verified = False
            hresult, card, active = scard.SCardConnect(
                self._context.handle, self.reader, share, _protocol_for(self._atr)
            )
            if hresult != scard.SCARD_S_SUCCESS:
                raise _error(hresult, "cannot reserve the card")
            self._card, self._protocol, self._lost = card, active, False

    def _transmit_raw(self, command: bytes) -> bytes:
        card = self._card
        if card is None:
            raise NoCardError("not connected to a card")
        hresult, response = scard.SCardTransmit(card, self._protocol, list(command))
        if hresult != scard.SCARD_S_SUCCESS:
            error = _error(hresult, "the card did not answer")
        elif len(response) < 2:
            # pcscd reports success with an empty answer when the card vanished mid-command
            # (pyscard's "Card returned no valid response").
            error = CardRemovedError("the card gave no valid response")
        else:
            if command[1] in _PIN_INS and len(command) > 5 and response[-2:] == [0x90, 0x00]:
                self._pin_verified = True
            return bytes(response)
        if isinstance(error, CardRemovedError):
            self._lost = True
        raise error


class CardEvent(enum.Enum):
    """What happened in a reader."""

    PLACED = "placed"  # カードが置かれた
    REMOVED = "removed"  # カードが取り外された


class ReaderMonitor:
    """Card placed/removed events of one reader, for a screen that waits on the card.

    The first `next_event()` reports PLACED at once if a card is already there (a card put
    down before the screen asked must be seen). `cancel()` from another thread ends a wait
    with ReaderError. Use as a context manager, or call `close()`.
    """

    def __init__(self, reader: str | None = None) -> None:
        self._context = _Context()
        readers = self._context.readers()
        if reader is None:
            if not readers:
                self._context.release()
                raise ReaderError("no card reader is connected")
            reader = readers[0]
        elif reader not in readers:
            self._context.release()
            raise ReaderError(f"no reader named {reader!r}")
        self.reader = reader
        self._known_state = scard.SCARD_STATE_UNAWARE
        self._present: bool | None = None

    def __enter__(self) -> ReaderMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def card_present(self) -> bool:
        """Whether a card is in the reader now. Raises ReaderError."""
        current = self._context.state(self.reader, scard.SCARD_STATE_UNAWARE, 0)
        return current is not None and _card_present(current[0])

    def next_event(self, timeout: float | None = None) -> CardEvent | None:
        """The next change of card presence, or None after `timeout` seconds (None = wait
        forever). Raises ReaderError (reader gone, pcscd gone, cancelled)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            changed = self._context.state(self.reader, self._known_state, remaining)
            if changed is None:
                return None
            state, _ = changed
            self._known_state = state & ~scard.SCARD_STATE_CHANGED
            present = _card_present(state)
            first = self._present is None
            if present != self._present:
                self._present = present
                if present:
                    return CardEvent.PLACED
                if not first:
                    return CardEvent.REMOVED
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def wait_for(self, event: CardEvent, timeout: float | None = None) -> bool:
        """Wait until `event` happens (PLACED is immediate if a card is there). True if it
        happened within `timeout`. Raises ReaderError."""
        if event is CardEvent.PLACED and self.card_present:
            self._present = True
            return True
        if event is CardEvent.REMOVED and self._present is None and not self.card_present:
            self._present = False
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            seen = self.next_event(remaining)
            if seen is event:
                return True
            if seen is None:
                return False

    def cancel(self) -> None:
        """End a wait in another thread (it raises ReaderError)."""
        self._context.cancel()

    def close(self) -> None:
        self._context.release()


def wait_for_card(reader: str | None = None, timeout: float | None = None) -> bool:
    """True once a card is in `reader` (at once if already there), False after `timeout`.
    Raises ReaderError."""
    with ReaderMonitor(reader) as monitor:
        return monitor.wait_for(CardEvent.PLACED, timeout)


def wait_for_removal(reader: str | None = None, timeout: float | None = None) -> bool:
    """True once `reader` holds no card (at once if empty), False after `timeout`.
    Raises ReaderError."""
    with ReaderMonitor(reader) as monitor:
        return monitor.wait_for(CardEvent.REMOVED, timeout)
