"""The abstract card transport: one way to exchange APDUs with a card.

Modelled on pyscard's card connection: one public `transmit()` that traces, and one hook,
`_transmit_raw()`, that each transport overrides (in-process virtual card, PC/SC reader).
`transmit()` does not check status words: the JPKI client decides what each one means
(an empty VERIFY answers 63 Cx on purpose).

The trace at DEBUG level never shows the data of a VERIFY or a CHANGE REFERENCE DATA (they
carry PINs), and shows only the length of response data (a READ BINARY of the card-info AP
returns a resident's My Number, name and address).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from cardreader.apdu import ApduFormatError, CommandApdu, ResponseApdu
from cardreader.status import CardRemovedError

logger = logging.getLogger(__name__)

INS_VERIFY = 0x20
INS_CHANGE_REFERENCE_DATA = 0x24
# Commands whose data is a PIN, a password or a new PIN: never traced.
_SECRET_INS = frozenset({INS_VERIFY, INS_CHANGE_REFERENCE_DATA})


def describe_command(apdu: CommandApdu) -> str:
    """The command as a trace line; the data of a PIN-carrying command is redacted."""
    header = f"{apdu.cla:02X} {apdu.ins:02X} {apdu.p1:02X} {apdu.p2:02X}"
    if not apdu.data:
        data = ""
    elif apdu.ins in _SECRET_INS:
        data = f" <redacted {len(apdu.data)} bytes>"
    else:
        data = f" [{len(apdu.data)}] {apdu.data.hex(' ').upper()}"
    le = "" if apdu.le is None else f" Le={apdu.le}"
    return header + data + le


def describe_response(response: ResponseApdu) -> str:
    """The response as a trace line: its length and status word, never its data."""
    return f"{len(response.data)} bytes, SW {response.sw:04X}"


class Transport(ABC):
    """A connection to one card. Use as a context manager (connect ... close).

    Every method may raise CardRemovedError (the card left the reader), NoCardError (no card
    to connect to) or ReaderError (the reader or the PC/SC service is unavailable).
    """

    @property
    @abstractmethod
    def atr(self) -> bytes:
        """The ATR of the connected card. Raises NoCardError when not connected."""

    @abstractmethod
    def connect(self) -> None:
        """Connect to (and power) the card. Raises NoCardError, ReaderError."""

    @abstractmethod
    def disconnect(self) -> None:
        """Leave the card, resetting it so that no verified PIN outlives the session."""

    def close(self) -> None:
        """Disconnect and release every resource; safe to call twice."""
        self.disconnect()

    def __enter__(self) -> Transport:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the card for this process only (while a PIN is verified) and reset it on
        leaving, so no other process can use the verified state. A no-op where no other
        process can reach the card. Raises ReaderError, CardRemovedError."""
        yield

    def transmit(self, apdu: CommandApdu) -> ResponseApdu:
        """Send one command APDU and return the response, whatever its status word.

        Raises CardRemovedError (also for a response too short to hold a status word, which
        is what a card pulled mid-command leaves), NoCardError, ReaderError.
        """
        debug = logger.isEnabledFor(logging.DEBUG)
        if debug:
            logger.debug("> %s", describe_command(apdu))
        raw = self._transmit_raw(apdu.encode())
        try:
            response = ResponseApdu.decode(raw)
        except ApduFormatError as exc:
            raise CardRemovedError("the card gave no valid response") from exc
        if debug:
            logger.debug("< %s", describe_response(response))
        return response

    @abstractmethod
    def _transmit_raw(self, command: bytes) -> bytes:
        """Exchange raw bytes with the card. Raises CardRemovedError, NoCardError, ReaderError."""
