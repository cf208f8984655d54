"""ISO 7816-4 command and response APDUs.

Both sides of the wire use these: the host-side JPKI client builds `CommandApdu`s and reads
`ResponseApdu`s; the virtual card parses the same bytes back. Short and extended lengths are
both understood, but the encoder emits the extended form only when a length needs it,
because every JPKI client sends short APDUs (jpki.md §9.3).
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ApduFormatError(ValueError):
    """Bytes that are not a well-formed command or response APDU."""


@dataclass(frozen=True, slots=True)
class CommandApdu:
    """A command APDU. `le` is None when no response data is expected (cases 1 and 3);
    `le=256` (short) or `le=65536` (extended) means "as much as there is"."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFF:
                raise ApduFormatError(f"{name} out of range: {value}")
        if len(self.data) > 65535:
            raise ApduFormatError("command data longer than 65,535 bytes")
        if self.le is not None and not 1 <= self.le <= 65536:
            raise ApduFormatError(f"Le out of range: {self.le}")

    @property
    def is_extended(self) -> bool:
        return len(self.data) > 255 or (self.le is not None and self.le > 256)

    def encode(self) -> bytes:
        """The APDU as bytes, short form unless a length needs the extended form."""
        header = bytes((self.cla, self.ins, self.p1, self.p2))
        if not self.is_extended:
            body = b""
            if self.data:
                body += bytes((len(self.data),)) + self.data
            if self.le is not None:
                body += bytes((self.le & 0xFF,))  # 256 encodes as 00
            return header + body
        body = b"\x00"
        if self.data:
            body += len(self.data).to_bytes(2, "big") + self.data
        if self.le is not None:
            le = b"\x00\x00" if self.le == 65536 else self.le.to_bytes(2, "big")
            # With data the 00 marker is already there; without it, Le carries it.
            body += le
        return header + body

    @classmethod
    def decode(cls, raw: bytes) -> CommandApdu:
        """Parse the four ISO cases, short and extended. Raises ApduFormatError."""
        if len(raw) < 4:
            raise ApduFormatError("an APDU has at least 4 bytes")
        cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
        body = raw[4:]
        if not body:
            return cls(cla, ins, p1, p2)
        if len(body) == 1:  # case 2 short
            return cls(cla, ins, p1, p2, b"", body[0] or 256)
        if body[0] != 0:  # short form with data
            lc = body[0]
            if len(body) == 1 + lc:
                return cls(cla, ins, p1, p2, bytes(body[1:]))
            if len(body) == 2 + lc:
                return cls(cla, ins, p1, p2, bytes(body[1 : 1 + lc]), body[-1] or 256)
            raise ApduFormatError("Lc does not match the length of the data")
        # body[0] == 0 and more than one byte: extended form
        if len(body) == 3:  # case 2 extended
            le = int.from_bytes(body[1:3], "big") or 65536
            return cls(cla, ins, p1, p2, b"", le)
        lc = int.from_bytes(body[1:3], "big")
        if lc == 0:
            raise ApduFormatError("extended Lc of zero")
        if len(body) == 3 + lc:
            return cls(cla, ins, p1, p2, bytes(body[3:]))
        if len(body) == 5 + lc:
            le = int.from_bytes(body[-2:], "big") or 65536
            return cls(cla, ins, p1, p2, bytes(body[3 : 3 + lc]), le)
        raise ApduFormatError("extended Lc does not match the length of the data")


@dataclass(frozen=True, slots=True)
class ResponseApdu:
    """A response APDU: data, then the two status bytes."""

    data: bytes = field(default=b"")
    sw1: int = 0x90
    sw2: int = 0x00

    @property
    def sw(self) -> int:
        return (self.sw1 << 8) | self.sw2

    @property
    def ok(self) -> bool:
        return self.sw == 0x9000

    def encode(self) -> bytes:
        return self.data + bytes((self.sw1, self.sw2))

    @classmethod
    def decode(cls, raw: bytes) -> ResponseApdu:
        """Raises ApduFormatError for fewer than two bytes (no status word)."""
        if len(raw) < 2:
            raise ApduFormatError("a response APDU ends with two status bytes")
        return cls(bytes(raw[:-2]), raw[-2], raw[-1])

    @classmethod
    def status(cls, sw: int, data: bytes = b"") -> ResponseApdu:
        return cls(data, sw >> 8, sw & 0xFF)
