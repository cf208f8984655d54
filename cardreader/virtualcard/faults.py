"""Card faults on demand: a virtual card that misbehaves on purpose, for testing card software.

A `FaultPlan` holds the faults a card is told to have; `VirtualCard.process` consults it on
every command APDU and `VirtualCard.power_on` before answering to reset:

    card = VirtualCard("card.json")
    card.faults.add(ForcedStatus(0x6581, command="read-binary"))  # 65 81 memory failure
    card.faults.add(PulledOut(after=5))                           # gone after the 5th APDU

or from the command line, `mynacard insert CARD --fault sw=6581:read-binary --fault pull-after=5`
(`parse_fault` reads one such spec). Each fault that fires is logged at WARNING with the
header and length of the APDU it hit, and kept in `FaultPlan.hits`; the data of a command is
never logged, since a VERIFY carries a PIN.

The catalogue (each a frozen dataclass):
- `SlowAnswer(seconds, up_to=None)`: every answer waits `seconds` (or a random time between
  `seconds` and `up_to`).
- `PulledOut(after=N)`: the card answers its Nth APDU (counted from when the fault was added)
  and is then out of the reader; `PulledOut(during=N)`: it is pulled while working on the
  Nth, which it carries out (a VERIFY still counts a wrong PIN) but never answers.
- `ForcedStatus(sw, command=..., times=None)`: the chosen command answers `sw` without data,
  instead of what it would have (6F 00, 65 81, 69 82 on a read that should pass ...).
- `CorruptedByte(command=..., offset=0, times=None)`: one byte of the command's response data
  is inverted (its status word stays 90 00).
- `LostVerification(command=..., times=None)`: the card forgets every verified PIN just
  before the chosen command (as a card that reset itself between two APDUs).
- `RefusesPowerOn()`: the card gives no answer to reset; nothing can talk to it.

A pull-out is reported to whoever holds the card (the vpcd bridge, the in-process transport)
by `CardPulledOutError`, the only exception `VirtualCard.process` raises.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

# Command names for faults, by instruction byte (jpki.md §12). A hex INS ("b0") works too.
COMMANDS: dict[str, int] = {
    "select": 0xA4,
    "read-binary": 0xB0,
    "read-record": 0xB2,
    "verify": 0x20,
    "change-reference-data": 0x24,
    "get-data": 0xCA,
    "sign": 0x2A,  # COMPUTE DIGITAL SIGNATURE (CLA 80)
}
ANY_COMMAND = "any"


class FaultSpecError(ValueError):
    """A fault description that names no known fault or has a bad value."""


class CardPulledOutError(Exception):
    """The card left the reader because of a `PulledOut` fault. `answer` is the response
    to the last command when the card answered it before leaving, None when it was pulled
    in the middle of it."""

    def __init__(self, answer: bytes | None) -> None:
        super().__init__("the card was pulled out (fault)")
        self.answer = answer


class PowerOnRefusedError(Exception):
    """The card gives no answer to reset (a `RefusesPowerOn` fault)."""


def command_ins(name: str) -> int:
    """The INS byte of a command name or a hex INS (-1 for any command). Raises FaultSpecError."""
    key = name.strip().lower()
    if key == ANY_COMMAND:
        return -1
    if key in COMMANDS:
        return COMMANDS[key]
    try:
        value = int(key, 16)
    except ValueError:
        value = -1
    if not 0 <= value <= 0xFF:
        known = ", ".join(COMMANDS)
        raise FaultSpecError(f"unknown command {name!r}: use one of {known}, {ANY_COMMAND} or a hex INS byte")
    return value


def describe_apdu(apdu: bytes) -> str:
    """The header and length of a command APDU: never its data (a VERIFY carries a PIN)."""
    return f"{apdu[:4].hex(' ').upper()} ({len(apdu)} bytes)"


@dataclass(frozen=True)
class SlowAnswer:
    seconds: float
    up_to: float | None = None

    def __post_init__(self) -> None:
        if self.seconds < 0 or (self.up_to is not None and self.up_to < self.seconds):
            raise FaultSpecError("a delay must be >= 0 and its upper bound not below it")

    def delay(self, rng: random.Random) -> float:
        return self.seconds if self.up_to is None else rng.uniform(self.seconds, self.up_to)

    def __str__(self) -> str:
        bound = "" if self.up_to is None else f"-{self.up_to:g}"
        return f"delay={self.seconds:g}{bound}"


@dataclass(frozen=True)
class PulledOut:
    after: int | None = None
    during: int | None = None

    def __post_init__(self) -> None:
        if (self.after is None) == (self.during is None) or (self.after or self.during or 0) < 1:
            raise FaultSpecError("a pull-out needs exactly one of after=N or during=N, N >= 1")

    @property
    def at(self) -> int:
        return self.after if self.after is not None else self.during or 0

    def __str__(self) -> str:
        return f"pull-after={self.after}" if self.after is not None else f"pull-during={self.during}"


@dataclass(frozen=True)
class ForcedStatus:
    sw: int
    command: str
    times: int | None = None

    def __post_init__(self) -> None:
        command_ins(self.command)
        if not 0x6000 <= self.sw <= 0x6FFF and self.sw & 0xF000 != 0x9000:
            raise FaultSpecError(f"{self.sw:04X} is not a status word (60 00 - 6F FF, 9x xx)")

    def __str__(self) -> str:
        return f"sw={self.sw:04X}:{self.command}"


@dataclass(frozen=True)
class CorruptedByte:
    command: str
    offset: int = 0
    times: int | None = None

    def __post_init__(self) -> None:
        command_ins(self.command)
        if self.offset < 0:
            raise FaultSpecError("the corrupted byte's offset must be >= 0")

    def __str__(self) -> str:
        return f"corrupt={self.command}:{self.offset}"


@dataclass(frozen=True)
class LostVerification:
    command: str
    times: int | None = None

    def __post_init__(self) -> None:
        command_ins(self.command)

    def __str__(self) -> str:
        return f"forget-verified={self.command}"


@dataclass(frozen=True)
class RefusesPowerOn:
    def __str__(self) -> str:
        return "no-power-on"


Fault = SlowAnswer | PulledOut | ForcedStatus | CorruptedByte | LostVerification | RefusesPowerOn


@dataclass(frozen=True)
class FaultHit:
    """One fault that fired, and the APDU it hit (header and length only)."""

    fault: str
    apdu: str


@dataclass
class _Armed:
    fault: Fault
    fired: int = 0
    start: int = 0  # the APDU count when the fault was added (PulledOut counts from there)


@dataclass
class FaultPlan:
    """The faults of one card; thread-safe. Empty: the card behaves."""

    seed: int | None = None
    hits: list[FaultHit] = field(default_factory=list)
    _armed: list[_Armed] = field(default_factory=list)
    _apdus: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @property
    def active(self) -> bool:
        return bool(self._armed)

    @property
    def faults(self) -> list[Fault]:
        with self._lock:
            return [armed.fault for armed in self._armed]

    def add(self, *faults: Fault) -> FaultPlan:
        """Arm `faults` (from now on). Returns the plan, so calls chain."""
        with self._lock:
            self._armed += [_Armed(fault, start=self._apdus) for fault in faults]
        return self

    def clear(self) -> None:
        """Disarm every fault: the card behaves again (the hits stay)."""
        with self._lock:
            self._armed.clear()

    def _record(self, fault: Fault, apdu: str) -> None:
        logger.warning("card fault %s hit APDU %s", fault, apdu)
        self.hits.append(FaultHit(str(fault), apdu))

    def refuses_power_on(self) -> bool:
        """Whether the card must stay mute at power-on (the refusal is logged)."""
        with self._lock:
            refusal = next((a.fault for a in self._armed if isinstance(a.fault, RefusesPowerOn)), None)
            if refusal is not None:
                self._record(refusal, "power-on")
            return refusal is not None

    def run(self, capdu: bytes, process: Callable[[bytes], bytes], forget_verified: Callable[[], None]) -> bytes:
        """Process `capdu` with `process`, as the armed faults make the card misbehave.
        Raises CardPulledOutError when a PulledOut fault fires."""
        apdu = describe_apdu(capdu)
        ins = capdu[1] if len(capdu) >= 2 else -1
        with self._lock:
            self._apdus += 1
            number = self._apdus
            due = [a for a in self._armed if self._due(a, ins, number)]
            delay = 0.0
            for armed in due:
                armed.fired += 1
                if isinstance(armed.fault, SlowAnswer):
                    delay += armed.fault.delay(self._rng)
                self._record(armed.fault, apdu)
        if delay:
            time.sleep(delay)
        if any(isinstance(a.fault, LostVerification) for a in due):
            forget_verified()
        forced = next((a.fault for a in due if isinstance(a.fault, ForcedStatus)), None)
        if forced is not None:
            answer = forced.sw.to_bytes(2, "big")
        else:
            answer = process(capdu)
        for armed in due:
            if isinstance(armed.fault, CorruptedByte) and len(answer) > 2:
                answer = _invert(answer, armed.fault.offset % (len(answer) - 2))
        pulled = next((a.fault for a in due if isinstance(a.fault, PulledOut)), None)
        if pulled is not None:
            raise CardPulledOutError(answer if pulled.after is not None else None)
        return answer

    @staticmethod
    def _due(armed: _Armed, ins: int, number: int) -> bool:
        fault = armed.fault
        if isinstance(fault, SlowAnswer):
            return True
        if isinstance(fault, PulledOut):
            return number - armed.start == fault.at
        if isinstance(fault, ForcedStatus | CorruptedByte | LostVerification):
            if fault.times is not None and armed.fired >= fault.times:
                return False
            wanted = command_ins(fault.command)
            return wanted in (-1, ins)
        return False


def _invert(answer: bytes, index: int) -> bytes:
    return answer[:index] + bytes([answer[index] ^ 0xFF]) + answer[index + 1 :]


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise FaultSpecError(f"{what} must be a whole number, not {text!r}") from None


def _seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise FaultSpecError(f"a delay must be seconds, not {text!r}") from None


def _command_and_times(text: str) -> tuple[str, int | None]:
    command, _, times = text.partition("*")
    return command, (_int(times, "the count after *") if times else None)


def parse_fault(spec: str) -> Fault:
    """One fault from its command-line form. Raises FaultSpecError.

    delay=0.2 | delay=0.1-0.5 | pull-after=N | pull-during=N | sw=6F00:read-binary[*TIMES]
    | corrupt=read-binary[:OFFSET][*TIMES] | forget-verified=sign[*TIMES] | no-power-on
    """
    name, _, value = spec.strip().partition("=")
    if name == "no-power-on" and not value:
        return RefusesPowerOn()
    if not value:
        raise FaultSpecError(f"unknown fault {spec!r}; see `mynacard insert --help`")
    if name == "delay":
        low, _, high = value.partition("-")
        return SlowAnswer(_seconds(low), _seconds(high) if high else None)
    if name in ("pull-after", "pull-during"):
        count = _int(value, name)
        return PulledOut(after=count) if name == "pull-after" else PulledOut(during=count)
    if name == "sw":
        sw_text, _, rest = value.partition(":")
        if len(sw_text) != 4:
            raise FaultSpecError(f"a status word is 4 hex digits, not {sw_text!r}")
        command, times = _command_and_times(rest)
        try:
            sw = int(sw_text, 16)
        except ValueError:
            raise FaultSpecError(f"a status word is 4 hex digits, not {sw_text!r}") from None
        return ForcedStatus(sw, command, times)
    if name == "corrupt":
        where, times = _command_and_times(value)
        command, _, offset = where.partition(":")
        return CorruptedByte(command, _int(offset, "the offset") if offset else 0, times)
    if name == "forget-verified":
        command, times = _command_and_times(value)
        return LostVerification(command, times)
    raise FaultSpecError(f"unknown fault {spec!r}; see `mynacard insert --help`")
