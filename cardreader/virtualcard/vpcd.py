"""The bridge from a VirtualCard to vsmartcard's vpcd reader driver inside pcscd.

vpcd is the TCP server; the card connects to it (a connection is an insertion, closing it a
removal). Wire protocol (pcsc.md): every message both ways is a 2-byte big-endian length and
a payload. A 1-byte payload from vpcd is a control code — 00 power off, 01 power on,
02 reset, 04 "send the ATR" (the only one answered, with one frame holding the ATR); a
longer payload is a command APDU, answered with exactly one frame. An empty frame is never
sent (vpcd would hang and then eject the card).

Faults (faults.py): a card pulled out closes the connection (after sending its answer when it
was pulled after the command, without one when pulled during it); a card that refuses to
power on answers vpcd's power-on and ATR requests with nothing usable, see `_handle`.

Speed: vpcd writes length and payload in two sends with Nagle on; with delayed ACKs on our
side every message would stall ~40 ms. TCP_NODELAY, and TCP_QUICKACK set again before
every recv (Linux clears it), bring a round trip to a fraction of a millisecond.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from types import TracebackType

from cardreader.status import ReaderError
from cardreader.virtualcard.card import VirtualCard
from cardreader.virtualcard.faults import CardPulledOutError, PowerOnRefusedError

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 35963  # /etc/reader.conf.d/vpcd: "Virtual PCD 00 00"

POWER_OFF, POWER_ON, RESET, SEND_ATR = 0x00, 0x01, 0x02, 0x04
MUTE_ATR = b"\x00"  # not an ATR (TS must be 3B or 3F): what vpcd gets from a mute card
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


class _Closed(Exception):
    """vpcd closed the connection, or the bridge removed the card."""


class VpcdBridge:
    """Serves one VirtualCard to one vpcd reader, in a daemon thread."""

    def __init__(self, card: VirtualCard, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        self.card = card
        self.host = host
        self.port = port
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._removing = threading.Event()
        self._greeted = threading.Event()  # vpcd sent its first frame: it serves this card
        self._guard = threading.Lock()
        self.pulled_out = threading.Event()  # a PulledOut fault took the card out
        self._mute = False  # the card refused to power on (a RefusesPowerOn fault)
        self._mute_atr = MUTE_ATR

    @property
    def inserted(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive() and not self._removing.is_set()

    def insert(self, timeout: float = 5.0) -> None:
        """Connect to vpcd and serve the card; returns once vpcd talks to the card (its
        first frame comes within pcscd's ~400 ms polling interval).

        Raises ReaderError if vpcd does not accept the connection (pcscd with the
        vsmartcard-vpcd driver not running, or a wrong host/port), if it accepts but stays
        silent for `timeout` seconds (the kernel queued the connection because another card
        is in that reader), or if this card is already inserted."""
        with self._guard:
            if self.inserted:
                raise ReaderError("the card is already inserted")
            if self._sock is not None:  # vpcd dropped the last connection: close our end
                self._sock.close()
                self._sock = None
            try:
                sock = socket.create_connection((self.host, self.port), timeout=timeout)
            except OSError as exc:
                raise ReaderError(
                    f"no vpcd reader listens on {self.host}:{self.port} ({exc.strerror or exc}); "
                    "pcscd with the vsmartcard-vpcd driver must be running"
                ) from exc
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
            self._removing.clear()
            self._greeted.clear()
            self.pulled_out.clear()
            self._mute = False  # a new insertion: the card answers to reset unless its faults say otherwise
            self._thread = threading.Thread(
                target=self._serve, args=(sock,), name=f"vpcd-card-{self.port}", daemon=True
            )
            self._thread.start()
        if not self._greeted.wait(timeout):
            self.remove()
            raise ReaderError(
                f"vpcd at {self.host}:{self.port} accepted the card but did not talk to it within "
                f"{timeout:g} s; is another card already in that reader?"
            )
        with self._guard:
            if self._thread is None or not self._thread.is_alive():
                raise ReaderError(f"vpcd at {self.host}:{self.port} closed the connection at once")
            logger.info("card inserted into the vpcd reader at %s:%d", self.host, self.port)

    def remove(self) -> None:
        """Close the connection (PC/SC clients see the card removed); waits for the thread."""
        with self._guard:
            self._removing.set()
            sock, thread = self._sock, self._thread
            self._sock = self._thread = None
            if sock is not None:
                with contextlib.suppress(OSError):  # vpcd may have closed it already
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            if thread is not None and thread is not threading.current_thread():
                thread.join()
            self.card.power_off()
            logger.info("card removed from the vpcd reader at %s:%d", self.host, self.port)

    def __enter__(self) -> VpcdBridge:
        self.insert()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.remove()

    # -- the serving thread -------------------------------------------------------------
    def _serve(self, sock: socket.socket) -> None:
        try:
            payload = _receive_frame(sock)
            self._greeted.set()  # once: an Event.set per APDU costs a lock round
            while True:
                answer = self._handle(payload)
                if answer is not None:
                    sock.sendall(len(answer).to_bytes(2, "big") + answer)
                payload = _receive_frame(sock)
        except CardPulledOutError as exc:
            if exc.answer is not None:
                with contextlib.suppress(OSError):
                    sock.sendall(len(exc.answer).to_bytes(2, "big") + exc.answer)
            logger.warning("card pulled out of the vpcd reader at %s:%d (fault)", self.host, self.port)
            self.pulled_out.set()
            self._removing.set()
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        except (_Closed, OSError) as exc:
            if not self._removing.is_set():
                logger.warning("vpcd closed the connection of %s:%d: %s", self.host, self.port, exc)
        finally:
            self.card.power_off()

    def _handle(self, payload: bytes) -> bytes | None:
        if len(payload) == 1:
            code = payload[0]
            if code == POWER_OFF:
                self.card.power_off()
            elif code in (POWER_ON, RESET):
                self._power_on(reset=code == RESET)
            elif code == SEND_ATR:
                return self._mute_atr if self._mute else self.card.atr
            else:
                logger.warning("unknown vpcd control code %02X ignored", code)
            return None
        if not payload:
            return None  # nothing to answer (vpcd never sends an empty frame)
        try:
            return self.card.process(payload)  # never empty: always ends with a status word
        except PowerOnRefusedError:
            self._mute = True
            return self._mute_atr

    def _power_on(self, *, reset: bool) -> None:
        try:
            if reset:
                self.card.reset()
            else:
                self.card.power_on()
            self._mute = False
        except PowerOnRefusedError:
            # vpcd asks for the ATR right after powering up; the answer below is what a
            # mute chip leaves the reader with, so pcscd fails the power-up.
            self._mute = True


def _receive_exactly(sock: socket.socket, count: int) -> bytes:
    if _QUICKACK is not None:
        sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
    first = sock.recv(count)
    if len(first) == count:
        return first  # the usual case: the whole piece in one recv, no copying
    if not first:
        raise _Closed("connection closed")
    chunks = bytearray(first)
    while len(chunks) < count:
        if _QUICKACK is not None:
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        chunk = sock.recv(count - len(chunks))
        if not chunk:
            raise _Closed("connection closed")
        chunks += chunk
    return bytes(chunks)


def _receive_frame(sock: socket.socket) -> bytes:
    length = int.from_bytes(_receive_exactly(sock, 2), "big")
    return _receive_exactly(sock, length) if length else b""
