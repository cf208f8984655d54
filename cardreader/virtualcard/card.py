"""The virtual My Number card: power state, current DF/EF, security state, command dispatch.

Commands follow jpki.md §12. The card answers every byte string with a status word; a fault
inside the card answers 6F 00 and is logged (the fuzz tests assert that it never happens).

Security state is a set of verified PIN EFs (per DF and file ID). It survives EF selection
and the selection of other DFs, and is cleared at power-off and reset; with
`clear_on_reselect=True` any SELECT of a DF clears it (how OpenSC's logout hopes a real
card behaves; jpki.md §14 leaves it open).

PIN counters live on disk (store.py): the card re-reads them when the file changed (at
power-on, on every VERIFY) and writes a failure before it answers, under a lock, so two
processes holding one card file share one counter.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cardreader.apdu import ApduFormatError, CommandApdu
from cardreader.status import SW
from cardreader.virtualcard import jpki_ap, kenhojo_ap, other_aps
from cardreader.virtualcard.faults import FaultPlan, PowerOnRefusedError
from cardreader.virtualcard.filesystem import BinaryEf, Df, Ef, KeyEf, RecordEf
from cardreader.virtualcard.pins import MAX_PIN_BYTES, PinBook, PinEf
from cardreader.virtualcard.signer import SignInputError, UnknownSchemeError
from cardreader.virtualcard.store import CardStore
from konbini_common.cardfile import CardFile, CardFileError

logger = logging.getLogger(__name__)

NO_PRECISE_DIAGNOSIS = 0x6F00

# Instructions by class (ISO 7816-4 interindustry class 00, JICSAP proprietary class 80).
INS_SELECT = 0xA4
INS_READ_BINARY = 0xB0
INS_READ_RECORD = 0xB2
INS_VERIFY = 0x20
INS_CHANGE_REFERENCE_DATA = 0x24
INS_GET_DATA = 0xCA
INS_COMPUTE_SIGNATURE = 0x2A  # CLA 80 (jpki.md §5)

GET_DATA_ATR_TAG = 0x5F51  # jpki.md §9.1: the card's contact ATR without TS


def build_filesystem(card: CardFile) -> dict[bytes, Df]:
    """Every application of the card, by AID. Raises CardFileError for unusable keys."""
    apps = [jpki_ap.build(card), kenhojo_ap.build(card), *other_aps.build(card)]
    return {app.aid: app for app in apps}


def _sw(code: int, data: bytes = b"") -> bytes:
    return data + code.to_bytes(2, "big")


@dataclass
class _Session:
    """What a power cycle clears."""

    df: Df | None = None
    app_selected: bool = False  # false right after reset: SELECT MF then answers 6A 86
    ef: Ef | None = None
    verified: set[tuple[bytes, int]] = field(default_factory=set)


class VirtualCard:
    """A My Number card emulated from a card file.

    `process` takes one command APDU and returns the response APDU; it is safe to call from
    several threads (one lock serialises the card, as a chip would). `faults` makes it
    misbehave on purpose (faults.py); without faults it never raises."""

    def __init__(self, path: str | os.PathLike[str], *, clear_on_reselect: bool = False) -> None:
        """Load the card file. Raises konbini_common.cardfile.CardFileError (missing, damaged,
        unusable key or ATR)."""
        self.path = Path(path)
        self._store = CardStore.open(self.path)
        if not 2 <= len(self._store.card.atr) <= 33:  # vpcd must never get an empty frame
            raise CardFileError("card file has no usable ATR")
        self._apps = build_filesystem(self._store.card)
        self._pins = PinBook(self._store)
        self._clear_on_reselect = clear_on_reselect
        self._lock = threading.RLock()
        self._powered = False
        self._session = _Session()
        self.faults = FaultPlan()
        self.power_on()
        handlers: dict[tuple[int, int], Callable[[CommandApdu], bytes]] = {
            (0x00, INS_SELECT): self._select,
            (0x00, INS_READ_BINARY): self._read_binary,
            (0x00, INS_READ_RECORD): self._read_record,
            (0x00, INS_VERIFY): self._verify,
            (0x00, INS_CHANGE_REFERENCE_DATA): self._change_reference_data,
            (0x00, INS_GET_DATA): self._get_data,
            (0x80, INS_COMPUTE_SIGNATURE): self._compute_signature,
        }
        self._handlers = handlers
        self._known_ins = {ins for _, ins in handlers}

    # -- power --------------------------------------------------------------------------
    @property
    def atr(self) -> bytes:
        return self._store.card.atr

    def power_on(self) -> bytes:
        """Power up (cold reset): security state cleared, ISD current. Returns the ATR.
        Raises PowerOnRefusedError when a RefusesPowerOn fault is armed."""
        with self._lock:
            if self.faults.active and self.faults.refuses_power_on():
                self._session = _Session()
                self._powered = False
                raise PowerOnRefusedError("the card gave no answer to reset (fault)")
            self._session = _Session(df=self._apps[other_aps.ISD_AID])
            self._powered = True
            self._store.refresh()
            return self.atr

    def power_off(self) -> None:
        """Power down: security state and current files are gone."""
        with self._lock:
            self._session = _Session()
            self._powered = False

    def reset(self) -> bytes:
        """Warm reset (power off, then on). Returns the ATR."""
        with self._lock:
            self.power_off()
            return self.power_on()

    # -- commands -----------------------------------------------------------------------
    def process(self, capdu: bytes) -> bytes:
        """One command APDU -> the response APDU (data + SW1 SW2). Raises only what an armed
        fault makes it raise: CardPulledOutError, PowerOnRefusedError."""
        if self.faults.active:
            return self.faults.run(bytes(capdu), self._process, self._forget_verified)
        return self._process(capdu)

    def _forget_verified(self) -> None:
        with self._lock:
            self._session.verified.clear()

    def _process(self, capdu: bytes) -> bytes:
        with self._lock:
            try:
                if not self._powered:
                    # A card that gets a command unpowered powers up first, as a
                    # contactless card entering the field would.
                    self.power_on()
                answer = self._dispatch(bytes(capdu))
                if logger.isEnabledFor(logging.DEBUG):
                    # The header and the status only: command data may be a PIN.
                    logger.debug(
                        "card: %s (%d bytes) -> %s", bytes(capdu[:4]).hex(" "), len(capdu), answer[-2:].hex(" ")
                    )
                return answer
            except PowerOnRefusedError:  # a fault on purpose: the card stays mute
                raise
            except Exception:  # the card must answer; a fault is a bug, so log it loudly
                logger.exception("virtual card fault while processing a command")
                return _sw(NO_PRECISE_DIAGNOSIS)

    def _dispatch(self, raw: bytes) -> bytes:
        if len(raw) < 4:
            return _sw(SW.WRONG_LENGTH)
        cla, ins = raw[0], raw[1]
        if 0x40 <= cla <= 0x7F:  # further interindustry class: logical channels 4..19
            return _sw(SW.LOGICAL_CHANNEL_NOT_SUPPORTED)
        base = cla & 0xFC
        if base not in (0x00, 0x80):
            return _sw(SW.CLA_NOT_SUPPORTED)
        if cla & 0x03:
            return _sw(SW.LOGICAL_CHANNEL_NOT_SUPPORTED)
        handler = self._handlers.get((base, ins))
        if handler is None:
            return _sw(SW.CLA_NOT_SUPPORTED if ins in self._known_ins else SW.INS_NOT_SUPPORTED)
        try:
            apdu = CommandApdu.decode(raw)
        except ApduFormatError:
            return _sw(SW.WRONG_LENGTH)
        return handler(apdu)

    # SELECT ----------------------------------------------------------------------------
    def _select(self, apdu: CommandApdu) -> bytes:
        # An Le with P2 0C ("no response data") is tolerated: the answer simply has no data.
        if apdu.p1 == 0x04:
            return self._select_df(apdu)
        if apdu.p1 == 0x02:
            return self._select_ef(apdu)
        if apdu.p1 == 0x00:
            return self._select_mf(apdu)
        return _sw(SW.INCORRECT_P1P2)

    def _select_df(self, apdu: CommandApdu) -> bytes:
        if not apdu.data:
            return _sw(SW.WRONG_LENGTH)
        app = self._apps.get(apdu.data)
        if app is None:
            return _sw(SW.FILE_NOT_FOUND)  # never 90 00 for another driver's AID (jpki.md §9.2)
        if apdu.p2 != 0x0C:
            return _sw(SW.INCORRECT_P1P2)
        session = self._session
        if self._clear_on_reselect:
            session.verified.clear()
        session.df, session.ef, session.app_selected = app, None, True
        return _sw(SW.OK)

    def _select_ef(self, apdu: CommandApdu) -> bytes:
        if len(apdu.data) != 2:
            return _sw(SW.WRONG_LENGTH)
        if apdu.p2 != 0x0C:
            return _sw(SW.INCORRECT_P1P2)
        ef = self._find_ef(int.from_bytes(apdu.data, "big"))
        if ef is None:
            return _sw(SW.FILE_NOT_FOUND)
        self._session.ef = ef
        return _sw(SW.OK)

    def _select_mf(self, apdu: CommandApdu) -> bytes:
        # Observed quirks (jpki.md §1): SELECT MF answers 6A 86 right after reset and 90 00
        # (without changing the DF) once an application is current; 3F00 by FID is 6A 82.
        if apdu.data:
            return _sw(SW.FILE_NOT_FOUND if apdu.data == b"\x3f\x00" else SW.INCORRECT_P1P2)
        return _sw(SW.OK if self._session.app_selected else SW.INCORRECT_P1P2)

    def _find_ef(self, fid: int) -> Ef | None:
        app = self._session.df
        return None if app is None else app.efs.get(fid)

    # READ BINARY / READ RECORD ----------------------------------------------------------
    def _read_binary(self, apdu: CommandApdu) -> bytes:
        if apdu.data or apdu.le is None:
            return _sw(SW.WRONG_LENGTH)
        if apdu.p1 & 0x80:  # short-EF-ID form: P1 = 80 | SFI, P2 = offset (jpki.md §3.1)
            if apdu.p1 & 0x60:
                return _sw(SW.INCORRECT_P1P2)
            ef = self._find_ef(apdu.p1 & 0x1F)
            if ef is None:
                return _sw(SW.FILE_NOT_FOUND)
            self._session.ef = ef
            offset = apdu.p2
        else:
            ef = self._session.ef
            offset = (apdu.p1 << 8) | apdu.p2
        if ef is None:
            return _sw(SW.NO_CURRENT_EF)
        if not isinstance(ef, BinaryEf):
            return _sw(SW.INCOMPATIBLE_FILE_STRUCTURE)
        if not self._may_read(ef.read_keys):
            return _sw(SW.SECURITY_STATUS_NOT_SATISFIED)
        if offset >= len(ef.content):
            return _sw(SW.OFFSET_OUT_OF_RANGE)
        # Fewer bytes than Le are returned with 90 00; never 61 xx / 6C xx (jpki.md §3.1).
        return _sw(SW.OK, ef.content[offset : offset + apdu.le])

    def _read_record(self, apdu: CommandApdu) -> bytes:
        if apdu.data or apdu.le is None:
            return _sw(SW.WRONG_LENGTH)
        if apdu.p2 & 0x07 != 0x04 or apdu.p1 == 0:  # only "record number P1"
            return _sw(SW.INCORRECT_P1P2)
        sfi = apdu.p2 >> 3
        if sfi:
            ef = self._find_ef(sfi)
            if ef is None:
                return _sw(SW.FILE_NOT_FOUND)
            self._session.ef = ef
        else:
            ef = self._session.ef
        if ef is None:
            return _sw(SW.NO_CURRENT_EF)
        if not isinstance(ef, RecordEf):
            return _sw(SW.INCOMPATIBLE_FILE_STRUCTURE)
        if not self._may_read(ef.read_keys):
            return _sw(SW.SECURITY_STATUS_NOT_SATISFIED)
        if apdu.p1 > len(ef.records):
            return _sw(SW.RECORD_NOT_FOUND)
        return _sw(SW.OK, ef.records[apdu.p1 - 1][: apdu.le])

    def _may_read(self, read_keys: frozenset[int]) -> bool:
        if not read_keys:
            return True
        app = self._session.df
        assert app is not None
        return any((app.aid, fid) in self._session.verified for fid in read_keys)

    # VERIFY / CHANGE REFERENCE DATA -----------------------------------------------------
    def _target_pin(self, apdu: CommandApdu) -> PinEf | int:
        """The PIN EF that P2 names (80 = current EF, 80|SFI = by short ID), or a status word."""
        if apdu.p2 == 0x80:
            ef = self._session.ef
            if ef is None:
                return SW.NO_CURRENT_EF
        elif apdu.p2 & 0xE0 == 0x80:
            ef = self._find_ef(apdu.p2 & 0x1F)
            if ef is None:
                return SW.REFERENCED_DATA_NOT_FOUND
        else:
            return SW.INCORRECT_P1P2
        if not isinstance(ef, PinEf):
            return SW.REFERENCED_DATA_NOT_FOUND
        return ef

    def _verify(self, apdu: CommandApdu) -> bytes:
        if apdu.p1 != 0x00:
            return _sw(SW.INCORRECT_P1P2)
        if apdu.le is not None or len(apdu.data) > MAX_PIN_BYTES:
            return _sw(SW.WRONG_LENGTH)
        pin = self._target_pin(apdu)
        if isinstance(pin, int):
            return _sw(pin)
        if not apdu.data:
            return _sw(self._pins.status(pin))
        assert self._session.df is not None
        key = (self._session.df.aid, pin.fid)
        self._session.verified.discard(key)  # a failed VERIFY leaves the key unverified
        result = self._pins.verify(pin, apdu.data)
        if result == SW.OK:
            self._session.verified.add(key)
        return _sw(result)

    def _change_reference_data(self, apdu: CommandApdu) -> bytes:
        if apdu.p1 != 0x01:  # 00 (old + new in one) is not used by clients
            return _sw(SW.INCORRECT_P1P2)
        if apdu.le is not None or not apdu.data or len(apdu.data) > MAX_PIN_BYTES:
            return _sw(SW.WRONG_LENGTH)
        pin = self._target_pin(apdu)
        if isinstance(pin, int):
            return _sw(pin)
        assert self._session.df is not None
        if (self._session.df.aid, pin.fid) not in self._session.verified:
            return _sw(SW.SECURITY_STATUS_NOT_SATISFIED)
        return _sw(self._pins.change(pin, apdu.data))

    # GET DATA ---------------------------------------------------------------------------
    def _get_data(self, apdu: CommandApdu) -> bytes:
        if apdu.data or apdu.le is None:
            return _sw(SW.WRONG_LENGTH)
        if (apdu.p1 << 8) | apdu.p2 == GET_DATA_ATR_TAG:
            return _sw(SW.OK, self.atr[1:][: apdu.le])
        return _sw(SW.REFERENCED_DATA_NOT_FOUND)

    # COMPUTE DIGITAL SIGNATURE ----------------------------------------------------------
    def _compute_signature(self, apdu: CommandApdu) -> bytes:
        if apdu.p2 == 0x80:
            ef = self._session.ef
            if ef is None:
                return _sw(SW.NO_CURRENT_EF)
        elif apdu.p2 & 0xE0 == 0x80:
            ef = self._find_ef(apdu.p2 & 0x1F)
            if ef is None:
                return _sw(SW.REFERENCED_DATA_NOT_FOUND)
        else:
            return _sw(SW.INCORRECT_P1P2)
        if not isinstance(ef, KeyEf):
            return _sw(SW.CONDITIONS_NOT_SATISFIED)
        if not apdu.data or (apdu.le is not None and apdu.le < ef.signer.size):
            return _sw(SW.WRONG_LENGTH)
        app = self._session.df
        assert app is not None
        if (app.aid, ef.pin_fid) not in self._session.verified:
            return _sw(SW.SECURITY_STATUS_NOT_SATISFIED)
        try:
            signature = ef.signer.sign(apdu.p1, apdu.data)
        except UnknownSchemeError:
            return _sw(SW.INCORRECT_P1P2)
        except SignInputError:
            return _sw(SW.WRONG_LENGTH)
        # The verified state stays: clients sign several digests after one VERIFY (§5).
        return _sw(SW.OK, signature)
