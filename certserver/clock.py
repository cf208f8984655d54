"""The service's one clock.

Everything the service writes or compares in time (transaction and challenge expiry, service
hours, document dates, revocations, CRL and OCSP times, audit entries) reads this clock, in
the service's processes and in the operator's commands alike. Normally it is the host's UTC
time. With `certserver serve --pretend-time` (demos and training) it runs at a fixed offset
from the host's time; `serve` writes that offset to the data folder (CLOCK_FILE) so that its
worker processes and the commands run beside it (`certserver card revoke` ...) read the same
clock. Without it, a card revoked from the shell at the host's time would not be revoked yet
at an earlier pretended time. A pretending service follows that file while it runs
(`FollowedClock`): `certserver clock forward` moves every process of a running service and
the commands beside it at once (a training day jumps to closing time; a test harness lets a
transaction time out), forward only.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from konbini_common.durable import write_atomic

logger = logging.getLogger(__name__)

CLOCK_FILE = "service-clock.json"  # in the data folder; only while the service pretends

Clock = Callable[[], datetime]


def host_now() -> datetime:
    """The host's time (aware, UTC)."""
    return datetime.now(UTC)


class ClockFileError(Exception):
    """The data folder's clock file cannot be read or written; the message is one line."""


@dataclass(frozen=True)
class ServiceClock:
    """The host's UTC time shifted by `offset` (zero: the host's time). Calling it reads it."""

    offset: timedelta = timedelta(0)

    def __call__(self) -> datetime:
        return host_now() + self.offset

    @property
    def pretending(self) -> bool:
        return self.offset != timedelta(0)

    @classmethod
    def pretending_from(cls, start: datetime, *, last_recorded: datetime | None = None) -> ServiceClock:
        """A clock that reads `start` now and runs on from there.

        When the service has already recorded a later time (`last_recorded`, the audit log's
        newest entry), the clock continues from that instead: a restart with the same
        --pretend-time must not take the service back to before what it already did.
        Raises ValueError for a naive `start`.
        """
        if start.tzinfo is None:
            raise ValueError("a pretended time needs its zone")
        begin = start
        if last_recorded is not None and as_utc(last_recorded) > start:
            begin = as_utc(last_recorded)
            logger.warning(
                "DEMO CLOCK: the audit log's newest entry (%s) is later than the pretended %s: "
                "the clock continues from %s",
                begin.isoformat(),
                start.isoformat(),
                begin.isoformat(),
            )
        host = host_now()
        clock = cls(begin - host)
        logger.warning(
            "DEMO CLOCK: the service pretends it is %s (real time %+.0f s)",
            begin.isoformat(),
            clock.offset.total_seconds(),
        )
        return clock


class FollowedClock:
    """A pretending service's clock, following the data folder's clock file: when the file
    changes (`certserver clock forward`), the next reading uses its offset. It never goes
    back within a process (a later offset only), so nothing already recorded is overtaken.
    A file that cannot be read keeps the clock as it was (logged)."""

    def __init__(self, data_dir: Path, start: ServiceClock) -> None:
        self._data_dir = Path(data_dir)
        self._path = self._data_dir / CLOCK_FILE
        self._clock = start
        self._stamp = self._file_stamp()
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        stamp = self._file_stamp()
        if stamp != self._stamp:
            self._follow(stamp)
        return self._clock()

    @property
    def offset(self) -> timedelta:
        return self._clock.offset

    @property
    def pretending(self) -> bool:
        return self._clock.pretending

    def _file_stamp(self) -> tuple[int, int, int] | None:
        # A replacement is a new inode (written atomically), so this sees every change.
        try:
            status = os.stat(self._path)
        except OSError:
            return None
        return status.st_ino, status.st_mtime_ns, status.st_size

    def _follow(self, stamp: tuple[int, int, int] | None) -> None:
        with self._lock:
            if stamp == self._stamp:
                return
            self._stamp = stamp
            if stamp is None:
                return  # the file went away (the service stopping): keep the clock
            try:
                recorded = load_clock(self._data_dir)
            except ClockFileError as exc:
                logger.warning("%s; the clock stays where it was", exc)
                return
            if recorded.offset > self._clock.offset:
                self._clock = recorded
                logger.warning("DEMO CLOCK: moved forward; the service now pretends it is %s", recorded().isoformat())


def as_utc(moment: datetime) -> datetime:
    """An aware UTC datetime; a naive one (SQLite gives them back) is taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def save_clock(data_dir: Path, clock: ServiceClock | FollowedClock) -> None:
    """Record `clock` as the service's clock for the commands and workers on `data_dir`: its
    offset in CLOCK_FILE (mode 0600, replaced atomically), or no file for the host's time.
    Raises ClockFileError."""
    path = Path(data_dir) / CLOCK_FILE
    try:
        if not clock.pretending:
            path.unlink(missing_ok=True)
            return
        body = (
            json.dumps(
                {"format": "konbini-kiosk service clock", "version": 1, "offset_seconds": clock.offset.total_seconds()}
            )
            + "\n"
        )
        write_atomic(path, body.encode("utf-8"))
    except OSError as exc:
        raise ClockFileError(f"cannot write the service clock {path}: {exc.strerror}") from exc


def load_clock(data_dir: Path) -> ServiceClock:
    """The service's clock as `serve` recorded it on `data_dir`; the host's time when it
    recorded none. Raises ClockFileError for a file that is not a clock file."""
    path = Path(data_dir) / CLOCK_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ServiceClock()
    except OSError as exc:
        raise ClockFileError(f"cannot read the service clock {path}: {exc.strerror}") from exc
    try:
        seconds = json.loads(text)["offset_seconds"]
        if not isinstance(seconds, int | float) or isinstance(seconds, bool):
            raise TypeError(seconds)
        return ServiceClock(timedelta(seconds=seconds))
    except (ValueError, KeyError, TypeError, OverflowError):
        raise ClockFileError(
            f"{path} is not a service clock file: remove it, or start `certserver serve` again"
        ) from None
