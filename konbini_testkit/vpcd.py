"""The vpcd readers of the test machine: pcscd's vpcd driver listens on these ports and
names the readers after their index (tests/conftest.py locks them per test)."""

from __future__ import annotations

from dataclasses import dataclass

VPCD_PORTS = (35963, 35964)  # /etc/reader.conf.d/vpcd: "Virtual PCD 00 00" and "... 00 01"


@dataclass(frozen=True)
class VpcdSlot:
    reader: str  # the PC/SC reader name clients see
    port: int  # the TCP port the virtual card connects to
    host: str = "127.0.0.1"
