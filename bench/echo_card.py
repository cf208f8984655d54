"""A trivial vpcd card: the floor of the pyscard -> pcscd -> vpcd -> TCP stack.

It answers the ATR request and every APDU at once: a case-2 command (Le, no data) gets Le
zero bytes, anything else its own data back, always with 90 00. It applies the same socket
settings as our card (TCP_NODELAY, TCP_QUICKACK before every recv), so the ratio of the two
measures our card, not the stack.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

ATR = bytes.fromhex("3BE000FF8131FE4514")  # T=1, like the virtual My Number card


class EchoCard:
    """Connects to vpcd on `port` (= inserted) until `remove()` closes the socket."""

    def __init__(self, host: str = "127.0.0.1", port: int = 35963) -> None:
        self._sock = socket.create_connection((host, port), timeout=5.0)
        self._sock.settimeout(None)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._thread = threading.Thread(target=self._serve, name="echo-card", daemon=True)
        self._thread.start()

    def _recv_exact(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            # vpcd writes length and payload separately: quick-ack avoids the 40 ms stall.
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            chunk = self._sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("vpcd closed the connection")
            data += chunk
        return data

    def _serve(self) -> None:
        try:
            while True:
                (length,) = struct.unpack(">H", self._recv_exact(2))
                payload = self._recv_exact(length)
                if length == 1:
                    if payload == b"\x04":  # send ATR; power on/off/reset need no answer
                        self._send(ATR)
                    continue
                self._send(self._answer(payload))
        except (OSError, ConnectionError):
            return

    @staticmethod
    def _answer(apdu: bytes) -> bytes:
        if len(apdu) == 5:  # case 2 short: Le bytes of data
            return bytes(apdu[4] or 256) + b"\x90\x00"
        return apdu[5 : 5 + apdu[4]] + b"\x90\x00" if len(apdu) > 5 else b"\x90\x00"

    def _send(self, payload: bytes) -> None:
        self._sock.sendall(struct.pack(">H", len(payload)) + payload)

    def remove(self) -> None:
        """Close the socket: vpcd sees the card removed."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(timeout=2.0)
