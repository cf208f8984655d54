"""The issuing service for a test: `certserver serve` in its own process, on demo data.

Every handle goes through what an operator has: the `certserver` commands on the data folder
(`kiosk add`, `card issue`, `card revoke`, `municipality stop`) and the data folder's shared
clock file, so the handles keep working however many processes the service runs in.

The service keeps opening hours; it runs on a pretended clock (`serve --pretend-time`) that
starts at the next weekday 10:00 JST, so a test does not depend on the hour it runs at.
Moving the clock is `certserver clock forward`: the running service follows the data folder's
clock file, without a restart.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from konbini_testkit.processkit import ServiceNotReadyError, stop, wait_until_healthy

if TYPE_CHECKING:
    from kiosk.democards import DemoCardEntry

STORE = "テスト店"  # the store name kiosks are registered under


class ServiceStartError(RuntimeError):
    """The service, or one of its commands, failed; the message ends with its output."""


@dataclass(frozen=True)
class KioskCredential:
    """A registered kiosk: its id and secret (the secret is not in the repr)."""

    kiosk_id: str
    secret: str = field(repr=False)

    @property
    def environment(self) -> dict[str, str]:
        """KIOSK_CREDENTIAL for a `kiosk` command run by the test."""
        return {"KIOSK_CREDENTIAL": f"{self.kiosk_id}:{self.secret}"}


def certserver_command() -> list[str]:
    """The `certserver` command of this interpreter's environment."""
    script = Path(sys.executable).with_name("certserver")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from certserver.cli import main; sys.exit(main())"]


def _environment(database_url: str | None) -> dict[str, str]:
    # The test decides the service's settings: none leaks in from the caller's environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTSERVER_")}
    if database_url:
        env["CERTSERVER_DATABASE_URL"] = database_url
    return env


def run_certserver(
    *args: str, database_url: str | None = None, stdin: str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run one `certserver` command. Raises ServiceStartError when it fails."""
    run = subprocess.run(
        [*certserver_command(), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_environment(database_url),
        check=False,
    )
    if run.returncode != 0:
        raise ServiceStartError(f"certserver {args[0]} failed ({run.returncode}): {run.stderr.strip()}")
    return run


def make_demo(folder: Path, *, seed: int, database_url: str | None = None) -> Path:
    """`certserver init --demo --seed SEED` into `folder`. Raises ServiceStartError."""
    run_certserver("init", "--demo", "--seed", str(seed), "--data-dir", str(folder), database_url=database_url)
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def first_open_moment() -> dt.datetime:
    """The next weekday 10:00 JST (or later) at which every demo municipality is open."""
    from certserver.services.rules.calendar import next_surely_open

    return next_surely_open(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)).astimezone(dt.UTC)


class KonbiniService:
    """One running issuing service on a data folder of its own."""

    def __init__(
        self,
        data_dir: Path,
        *,
        database_url: str | None = None,
        start_at: dt.datetime | None = None,
        render_processes: int = 0,
    ) -> None:
        """`render_processes` 0 draws the PDFs in the service's own process: it starts in
        about half the time, and a test's few documents need no other cores."""
        self.data_dir = Path(data_dir)
        self.database_url = database_url
        self.render_processes = render_processes
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._start_at = start_at or first_open_moment()
        self._process: subprocess.Popen[bytes] | None = None
        self._log = self.data_dir.parent / f"{self.data_dir.name}-service.log"
        self._kiosks = 0

    # -- life ----------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> None:
        """Start `certserver serve` and wait until it answers. Raises ServiceStartError."""
        command = [
            *certserver_command(),
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            "--pretend-time",
            self._start_at.isoformat(),
            "--render-processes",
            str(self.render_processes),
        ]
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=_environment(self.database_url)
            )
        try:
            wait_until_healthy(self.url, self._process, timeout=timeout, describe=self._log_tail)
        except ServiceNotReadyError as exc:
            self.stop()
            raise ServiceStartError(str(exc)) from exc

    def stop(self) -> None:
        """Stop the service (SIGTERM, then SIGKILL after 30 s)."""
        if self._process is not None:
            stop(self._process)
            self._process = None

    def _log_tail(self) -> str:
        try:
            return "\n".join(self._log.read_text(encoding="utf-8", errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    # -- what a test reads ----------------------------------------------------------------
    @property
    def cards_dir(self) -> Path:
        return self.data_dir / "cards"

    def demo_cards(self) -> dict[str, DemoCardEntry]:
        """The demo cards of cards/index.json, by resident id (their PINs are demo values).
        Raises kiosk.democards.DemoIndexError."""
        from kiosk.democards import read_index

        return {entry.resident_id: entry for entry in read_index(self.cards_dir)}

    def now(self) -> dt.datetime:
        """The service's clock (its pretended time), as the data folder records it."""
        from certserver.clock import load_clock

        return load_clock(self.data_dir)()

    # -- handles --------------------------------------------------------------------------
    def _certserver(self, *args: str, stdin: str | None = None) -> str:
        return run_certserver(
            *args, "--data-dir", str(self.data_dir), database_url=self.database_url, stdin=stdin
        ).stdout

    def new_kiosk(self, kiosk_id: str | None = None) -> KioskCredential:
        """Register a kiosk (`certserver kiosk add`) and return its credential."""
        self._kiosks += 1
        kiosk_id = kiosk_id or f"HARNESS-{self._kiosks:03d}"
        out = self._certserver("kiosk", "add", "--id", kiosk_id, "--store", STORE)
        found = re.search(r"^KIOSK_CREDENTIAL=([^:\s]+):(\S+)$", out, re.M)
        if found is None:
            raise ServiceStartError("certserver kiosk add printed no credential")
        return KioskCredential(found.group(1), found.group(2))

    def issue_card(self, resident_id: str, out: Path, *, pin: str, password: str) -> Path:
        """A new card for a resident (`certserver card issue`); the PIN goes through stdin."""
        self._certserver(
            "card", "issue", "--resident", resident_id, "--pin-stdin", "--out", str(out), stdin=f"{pin}\n{password}\n"
        )
        return out

    def revoke_card(self, serial: str, reason: str = "lost") -> list[str]:
        """Revoke the card whose certificate has `serial` (`certserver card revoke`); returns
        the serials revoked."""
        out = self._certserver("card", "revoke", "--serial", serial, "--reason", reason)
        return re.findall(r"serial ([0-9A-F]+)", out)

    def stop_municipality(self, code: str, reason: str = "system maintenance") -> None:
        """The municipality stops issuing (`certserver municipality stop`)."""
        self._certserver("municipality", "stop", code, "--reason", reason)

    def resume_municipality(self, code: str) -> None:
        self._certserver("municipality", "resume", code)

    def move_clock(self, by: dt.timedelta) -> dt.datetime:
        """Move the service's pretended time forward by `by`, whole seconds
        (`certserver clock forward`): the running service, every worker and every command on
        its data folder follow at once. Returns the new time. Raises ValueError for a step
        under one second or backwards: the service never goes back before what it has
        already recorded."""
        seconds = int(by.total_seconds())
        if seconds < 1:
            raise ValueError("the service's clock only moves forward, by one second or more")
        self._certserver("clock", "forward", f"--by={seconds}s")
        return self.now()

    @property
    def pid(self) -> int | None:
        """The service's process id while it runs (a harness may kill -9 it to test a crash)."""
        return None if self._process is None else self._process.pid


def copy_data(template: Path, folder: Path) -> Path:
    """A private copy of a demo data folder (modes kept: the service refuses an open one)."""
    shutil.copytree(template, folder)
    return folder
