"""The virtual card's durable memory: the card file on disk, through konbini_common.cardfile.

A real chip writes its retry counter to EEPROM before it answers a VERIFY; this store does
the same with the card file (write, fsync, rename: `CardFile.save`). Several processes may
hold the same card file (a `mynacard insert` and a `mynacard reset-pin`, or two test
processes), so every change of a PIN record is a read-modify-write under an advisory lock
on a sidecar lock file, and the counters are re-read whenever the file on disk changed.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from konbini_common.cardfile import CardFile, CardFileError, PinRecord

logger = logging.getLogger(__name__)

T = TypeVar("T")


class CardStoreError(Exception):
    """The card file could not be read back or written; the card must not pretend it was."""


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class CardStore:
    """A loaded card file plus the means to change its PIN records durably."""

    def __init__(self, path: Path, card: CardFile) -> None:
        self.path = path
        self.card = card
        self._seen = _identity(path)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> CardStore:
        """Load the card file. Raises konbini_common.cardfile.CardFileError."""
        resolved = Path(path)
        seen = _identity(resolved)
        card = CardFile.load(resolved)
        store = cls(resolved, card)
        store._seen = seen
        return store

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(f".{self.path.name}.lock")

    def refresh(self) -> None:
        """Take the PIN records from disk if another process changed the file.

        A file that vanished or broke keeps the records in memory (the card stays usable
        for reads; the next write reports the problem)."""
        current = _identity(self.path)
        if current is None or current == self._seen:
            return
        try:
            fresh = CardFile.load(self.path)
        except CardFileError as exc:
            logger.warning("card file changed on disk and cannot be read: %s", exc)
            return
        self.card.pins = fresh.pins
        self._seen = current

    def pin(self, name: str) -> PinRecord | None:
        return self.card.pins.get(name)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            fd = os.open(self.lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        except OSError as exc:
            raise CardStoreError(f"cannot lock the card file: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def update_pins(self, change: Callable[[dict[str, PinRecord]], tuple[T, bool]]) -> T:
        """Apply `change` to fresh PIN records under the lock; save before returning if it
        reports a change. `change` returns (result, changed).

        Raises CardStoreError when the file cannot be re-read or written; the records in
        memory then keep the change, so a failed write never gives back a try."""
        with self._locked():
            try:
                fresh = CardFile.load(self.path)
            except CardFileError as exc:
                raise CardStoreError(str(exc)) from exc
            self.card.pins = fresh.pins
            result, changed = change(self.card.pins)
            if changed:
                try:
                    fresh.save(self.path)
                except OSError as exc:
                    self._seen = None  # memory is ahead of the disk: re-read it next time
                    raise CardStoreError(f"cannot write the card file: {exc.strerror or exc}") from exc
            self._seen = _identity(self.path)
            return result
