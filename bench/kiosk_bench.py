"""Kiosk benchmark: prints, from one run,

1. the time of one complete kiosk transaction through the real stack: a demo virtual card
   inserted into pcscd through the vpcd bridge, the headless driver (the code that
   `kiosk simulate --reader pcsc:NAME` runs: Driver + EffectRunner + PcscCardReader +
   ServiceClient + Printer) doing start -> read card -> PIN verify + sign by the card ->
   authenticate -> order a 住民票 (juminhyo) -> pay -> fetch documents -> print to a folder
   -> printed, against the real certserver (real document rendering) on 127.0.0.1 with
   `certserver init --demo` data in SQLite in a temporary folder. Median, p90 and min over
   N transactions after a warm-up, with a breakdown (card, service, printer, the card's
   removal, the rest). Only in-process time of `Driver.visit()` counts; the wall time of
   one `kiosk simulate` process is printed beside it for reference.
2. the kiosk's start-up time: in-process with `App.run_test()` (headless) until the
   welcome screen (StartScreen) is mounted, and as the wall time of a `kiosk run` process
   under a pseudo-terminal until the welcome text is drawn.

Goal: a complete transaction under 300 ms.

The person is simulated: the card lies on the reader when the visit starts and is taken
the moment the kiosk asks for it (the bridge closes its connection; pcscd must notice the
removal, which the breakdown shows on its own line). The service runs in its own process;
its clock is shifted into kiosk hours (a weekday 10:00-16:00 JST) when the bench runs
outside them, and the output says so.

Run: .venv/bin/python bench/kiosk_bench.py [--transactions 20] [--warmup 3] [--startups 5]
It needs pcscd with the vpcd driver running; it locks one vpcd reader like the tests do.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import fcntl
import json
import logging
import os
import pty
import re
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

if TYPE_CHECKING:  # the packages are imported where used, once sys.path holds the repo
    from cardreader.virtualcard import VpcdBridge
    from certserver.config import Settings
    from kiosk.card import CardReader

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from konbini_testkit.processkit import stop, vpcd_lock  # noqa: E402

VPCD_SLOTS = ((35963, "Virtual PCD 00 00"), (35964, "Virtual PCD 00 01"))  # as tests/conftest.py
KIOSK_ID = "BENCH-KIOSK-01"
RESIDENT = "toride-0001"  # a demo resident whose 住民票 is issued
GOAL_MS = 300.0
REMOVAL_ASKED = "waiting for the card to be removed"  # kiosk.driver's warning in `simulate`
CSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78])")

CARD_EFFECTS = frozenset({"ReadCard", "SignChallenge"})
SERVICE_EFFECTS = frozenset(
    {
        "StartTransaction",
        "Authenticate",
        "PlaceOrder",
        "RecordPayment",
        "FetchDocuments",
        "ReportPrinted",
        "CancelTransaction",
    }
)
PRINTER_EFFECTS = frozenset({"PrintDocuments"})


# -- the service (a child process) ----------------------------------------------------------


def service_settings(data_dir: Path) -> Settings:
    from certserver.config import Settings

    return Settings(data_dir=data_dir, database_url=f"sqlite:///{(data_dir / 'certserver.db').resolve()}")


def serve(port: int) -> None:
    """The real app (real renderer) with the clock shifted by BENCH_CLOCK_OFFSET seconds."""
    import uvicorn

    from certserver.app import create_app

    offset = dt.timedelta(seconds=float(os.environ["BENCH_CLOCK_OFFSET"]))
    app = create_app(
        service_settings(Path(os.environ["BENCH_DATA_DIR"])), clock=lambda: dt.datetime.now(dt.UTC) + offset
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


@dataclass(frozen=True)
class Service:
    url: str
    kiosk_id: str
    kiosk_secret: str
    card_path: Path
    pin: str = field(repr=False)
    clock_offset: dt.timedelta


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    from konbini_testkit.processkit import ServiceNotReadyError, wait_until_healthy

    try:
        wait_until_healthy(url, process)
    except ServiceNotReadyError as exc:
        raise SystemExit(str(exc)) from None


@contextmanager
def running_service(data_dir: Path) -> Iterator[Service]:
    """`certserver init --demo` into `data_dir`, a registered kiosk, and the service in a
    child process on 127.0.0.1; stopped on exit."""
    from certserver.cli.init_cmd import initialise
    from certserver.db.session import make_engine, make_session_factory, transaction
    from certserver.services.kiosks import register_kiosk
    from certserver.services.rules.calendar import next_surely_open
    from kiosk.democards import read_index

    created = dt.datetime.now(dt.UTC).replace(microsecond=0)
    settings = service_settings(data_dir)
    initialise(settings, demo=True, progress=lambda _line: None, now=created)
    engine = make_engine(settings.resolved_database_url)
    with transaction(make_session_factory(engine)) as session:
        credential = register_kiosk(session, KIOSK_ID, "ベンチ店 (bench store)", dt.datetime.now(dt.UTC))
    engine.dispose()
    card = next(c for c in read_index(settings.cards_dir) if c.resident_id == RESIDENT)
    # The service's own calendar says when every demo certificate is on offer.
    offset = max(dt.timedelta(0), next_surely_open(created + dt.timedelta(minutes=1)) - dt.datetime.now(dt.UTC))
    port = _free_port()
    env = {
        **os.environ,
        "BENCH_DATA_DIR": str(data_dir),
        "BENCH_CLOCK_OFFSET": str(offset.total_seconds()),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, server)
        yield Service(url, credential.kiosk_id, credential.secret, card.path, card.pin, offset)
    finally:
        stop(server)


# -- the vpcd reader ------------------------------------------------------------------------


@contextmanager
def locked_slot(timeout: float = 120.0) -> Iterator[tuple[int, str]]:
    """One vpcd reader, locked with the lock files of tests/conftest.py so that a test run
    at the same time never puts its card into our reader."""
    deadline = time.monotonic() + timeout
    while True:
        for port, reader in VPCD_SLOTS:
            fd = vpcd_lock(port, wait=False)
            if fd is None:
                continue
            try:
                yield port, reader
            finally:
                os.close(fd)
            return
        if time.monotonic() > deadline:
            raise SystemExit("every vpcd reader stayed busy")
        time.sleep(0.1)


# -- 1. one complete transaction --------------------------------------------------------------


def _timed_classes():  # subclasses of kiosk's runner and driver, defined once kiosk is imported
    from kiosk import flow as f
    from kiosk.driver import Driver
    from kiosk.runner import EffectRunner, Emit

    class TimedRunner(EffectRunner):
        """EffectRunner, with the seconds spent per kind of effect. The driver runs effects
        one at a time (results go to its queue), so the times never nest."""

        def __init__(self, base: EffectRunner) -> None:
            super().__init__(base.reader, base.client, base.acceptor, base.printer)
            self.seconds: dict[str, float] = defaultdict(float)

        def run(self, effect: f.Effect, emit: Emit) -> None:
            t0 = time.perf_counter()
            try:
                super().run(effect, emit)
            finally:
                self.seconds[type(effect).__name__] += time.perf_counter() - t0

    class PersonDriver(Driver):
        """The driver, with a person who takes the card the moment the kiosk asks."""

        def __init__(self, flow: f.KioskFlow, runner: EffectRunner, take_card: Callable[[], None]) -> None:
            super().__init__(flow, runner)
            self.take_card = take_card
            self.removal_seconds = 0.0
            self.take_seconds = 0.0

        def _remove_card(self, timeout: float) -> None:
            t0 = time.perf_counter()
            self.take_card()
            self.take_seconds += time.perf_counter() - t0
            super()._remove_card(timeout)
            self.removal_seconds += time.perf_counter() - t0

    return TimedRunner, PersonDriver


@dataclass
class VisitTiming:
    total: float
    card: float
    service: float
    printer: float
    removal: float  # from the kiosk asking for the card until pcscd reports it gone
    take: float  # of which: the bridge closing its connection to vpcd
    per_effect: dict[str, float]

    @property
    def rest(self) -> float:
        """Flow, driver, cash acceptor and the visit's record."""
        return self.total - self.card - self.service - self.printer - self.removal


def _insert(bridge: VpcdBridge, reader: CardReader) -> None:
    """Put the card on the reader and wait until the kiosk's reader sees it (not timed)."""
    bridge.insert()
    deadline = time.monotonic() + 10
    while reader.wait_change(1.0) is not True:
        if time.monotonic() > deadline:
            raise SystemExit("the kiosk's reader never saw the card")


def bench_transactions(
    service: Service, port: int, reader_name: str, out: Path, count: int, warmup: int, place_ahead: float
) -> list[VisitTiming]:
    from cardreader.virtualcard import VirtualCard, VpcdBridge
    from kiosk.card import open_reader
    from kiosk.config import KioskSettings, build_devices
    from kiosk.driver import VisitScript
    from kiosk.flow import KioskFlow

    timed_runner, person_driver = _timed_classes()
    settings = KioskSettings(
        server_url=service.url,
        kiosk_id=service.kiosk_id,
        kiosk_secret=SecretStr(service.kiosk_secret),
        printer_dir=out,
        reader=f"pcsc:{reader_name}",
        vpcd_port=port,
    )
    bridge = VpcdBridge(VirtualCard(str(service.card_path)), port=port)
    devices = build_devices(settings, reader=open_reader(settings.reader))
    runner = timed_runner(devices.runner)
    driver = person_driver(KioskFlow(timeouts=settings.timeouts()), runner, bridge.remove)
    script = VisitScript(pin=service.pin, certificate="juminhyo", persons="self")
    timings: list[VisitTiming] = []
    try:
        for number in range(warmup + count):
            _insert(bridge, devices.runner.reader)
            time.sleep(place_ahead)
            runner.seconds.clear()
            driver.removal_seconds = driver.take_seconds = 0.0
            t0 = time.perf_counter()
            result = driver.visit(script)
            total = time.perf_counter() - t0
            if result.status != "issued" or not result.documents:
                raise SystemExit(f"visit {number + 1} was not issued: {result.to_json()}")
            for document in result.documents:
                if not Path(document).read_bytes().startswith(b"%PDF"):
                    raise SystemExit(f"visit {number + 1} printed something that is not a PDF")
            if number < warmup:
                continue
            seconds = dict(runner.seconds)
            timings.append(
                VisitTiming(
                    total,
                    sum(v for k, v in seconds.items() if k in CARD_EFFECTS),
                    sum(v for k, v in seconds.items() if k in SERVICE_EFFECTS),
                    sum(v for k, v in seconds.items() if k in PRINTER_EFFECTS),
                    driver.removal_seconds,
                    driver.take_seconds,
                    seconds,
                )
            )
    finally:
        bridge.remove()
        devices.close()
    return timings


def simulate_wall_time(service: Service, port: int, reader_name: str, out: Path) -> tuple[float, str]:
    """One `kiosk simulate --reader pcsc:NAME` process, from launch to exit, with the card
    taken when the process says it waits for that. Returns (seconds, its JSON line)."""
    from cardreader.virtualcard import VirtualCard, VpcdBridge

    bridge = VpcdBridge(VirtualCard(str(service.card_path)), port=port)
    bridge.insert()
    # The secrets go by the environment, never on the command line.
    command = [
        sys.executable,
        "-m",
        "kiosk.cli",
        "simulate",
        "--server",
        service.url,
        "--kiosk-id",
        service.kiosk_id,
        "--reader",
        f"pcsc:{reader_name}",
        "--certificate",
        "juminhyo",
        "--out",
        str(out),
    ]
    env = {**os.environ, "KIOSK_SECRET": service.kiosk_secret, "KIOSK_PIN": service.pin}
    try:
        t0 = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        assert process.stderr is not None and process.stdout is not None
        stderr = process.stderr
        errors: list[str] = []

        def person() -> None:
            for line in stderr:
                if REMOVAL_ASKED in line:
                    bridge.remove()
                else:
                    errors.append(line.rstrip())

        watcher = threading.Thread(target=person, daemon=True)
        watcher.start()
        stdout = process.stdout.read()
        code = process.wait(timeout=120)
        elapsed = time.perf_counter() - t0
        watcher.join(timeout=5)
    finally:
        bridge.remove()
    if code != 0:
        raise SystemExit(f"kiosk simulate exited with {code}: {stdout.strip()} {' | '.join(errors)}")
    return elapsed, stdout.strip()


# -- 2. start-up --------------------------------------------------------------------------------


async def _one_startup_in_process(service: Service, port: int, reader_name: str, out: Path) -> float:
    from kiosk.app import KioskApp
    from kiosk.card import open_reader
    from kiosk.config import KioskSettings, build_devices
    from kiosk.screens.welcome import StartScreen

    t0 = time.perf_counter()
    settings = KioskSettings(
        server_url=service.url,
        kiosk_id=service.kiosk_id,
        kiosk_secret=SecretStr(service.kiosk_secret),
        printer_dir=out,
        reader=f"pcsc:{reader_name}",
        vpcd_port=port,
    )
    devices = build_devices(settings, reader=open_reader(settings.reader))  # as `kiosk run` does
    app = KioskApp(devices)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            while not (isinstance(app.screen, StartScreen) and app.screen.ready):
                if time.perf_counter() - t0 > 30:
                    raise SystemExit("the welcome screen never appeared")
                await pilot.pause(0.001)
            elapsed = time.perf_counter() - t0
    finally:
        devices.close()
    return elapsed


def startup_in_process(service: Service, port: int, reader_name: str, out: Path, count: int) -> list[float]:
    return [asyncio.run(_one_startup_in_process(service, port, reader_name, out)) for _ in range(count)]


def _drain(master: int, timeout: float) -> bytes:
    ready, _, _ = select.select([master], [], [], timeout)
    if not ready:
        return b""
    try:
        return os.read(master, 65536)
    except OSError:  # the child closed the terminal
        return b""


def startup_under_pty(service: Service, port: int, reader_name: str, out: Path, welcome: str) -> float:
    """Wall time from launching `kiosk run` in a 100x30 pseudo-terminal until the terminal
    output (escape sequences removed) contains `welcome`; then the kiosk is quit (ctrl+q)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    command = [
        sys.executable,
        "-m",
        "kiosk.cli",
        "run",
        "--server",
        service.url,
        "--kiosk-id",
        service.kiosk_id,
        "--reader",
        f"pcsc:{reader_name}",
        "--vpcd-port",
        str(port),
        "--printer-dir",
        str(out),
    ]
    env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor", "KIOSK_SECRET": service.kiosk_secret}
    t0 = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=REPO, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
    )
    os.close(slave)
    seen = b""
    elapsed: float | None = None
    try:
        while time.perf_counter() - t0 < 60 and process.poll() is None:
            seen += _drain(master, 0.05)
            if welcome in CSI.sub("", seen.decode("utf-8", "replace")):
                elapsed = time.perf_counter() - t0
                break
        if elapsed is None:
            tail = CSI.sub("", seen.decode("utf-8", "replace"))[-300:]
            raise SystemExit(f"`kiosk run` never drew {welcome!r} (exit {process.poll()}): {tail!r}")
        os.write(master, b"\x11")  # ctrl+q: Textual's quit
        deadline = time.monotonic() + 10
        while process.poll() is None and time.monotonic() < deadline:
            _drain(master, 0.05)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        os.close(master)
    return elapsed


# -- output -------------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{1000 * seconds:.1f} ms"


def _p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[8] if len(values) > 1 else values[0]


def _row(label: str, values: list[float]) -> str:
    return (
        f"  {label:<44} median {_ms(statistics.median(values)):>10}  p90 {_ms(_p90(values)):>10}  "
        f"min {_ms(min(values)):>10}"
    )


def report_transactions(timings: list[VisitTiming]) -> None:
    totals = [t.total for t in timings]
    print(f"complete transaction through pcscd + vpcd, driver in-process (n={len(timings)}):")
    print(_row("whole visit (Driver.visit)", totals))
    print(_row("  card: read + PIN verify/sign (pcscd)", [t.card for t in timings]))
    print(_row("  service: 7 HTTP calls (6 effects)", [t.service for t in timings]))
    print(_row("  printer: check SHA-256 + write PDF", [t.printer for t in timings]))
    print(_row("  card taken + pcscd notices removal", [t.removal for t in timings]))
    print(_row("    of which the bridge disconnects", [t.take for t in timings]))
    print(_row("  rest: flow, driver, cash, record", [t.rest for t in timings]))
    print(_row("whole visit without the removal wait", [t.total - t.removal for t in timings]))
    per_effect: dict[str, list[float]] = defaultdict(list)
    for timing in timings:
        for name, seconds in timing.per_effect.items():
            per_effect[name].append(seconds)
    detail = ", ".join(
        f"{name} {_ms(statistics.median(v))}"
        for name, v in sorted(per_effect.items(), key=lambda item: -statistics.median(item[1]))
        if statistics.median(v) >= 0.0005
    )
    print(f"  per effect (median): {detail}")
    own = [t.total - t.removal for t in timings]
    for label, values in (
        ("whole visit, with pcscd's removal notice", totals),
        ("kiosk's own work (without the removal wait)", own),
    ):
        median = statistics.median(values)
        verdict = "met" if median < GOAL_MS / 1000 else "NOT met"
        print(
            f"goal: one complete transaction < {GOAL_MS:.0f} ms; {label}: median {_ms(median)}, "
            f"p90 {_ms(_p90(values))} -> {verdict}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=20, help="measured transactions (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="transactions before measuring (default 3)")
    parser.add_argument("--startups", type=int, default=5, help="in-process start-ups (default 5)")
    parser.add_argument("--pty-startups", type=int, default=3, help="`kiosk run` processes (default 3; 0 skips)")
    parser.add_argument(
        "--place-ahead",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="how long the card lies on the reader (seen by pcscd) before a visit (default 0)",
    )
    parser.add_argument("--no-simulate", action="store_true", help="skip the `kiosk simulate` wall time")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)  # the service child
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    if args.transactions < 1 or args.warmup < 0 or args.startups < 1 or args.pty_startups < 0:
        parser.error("counts must be positive")
    # The driver warns when it waits for the card's removal (the signal for `simulate`);
    # in-process the person takes it at once, so the warning would only be noise.
    logging.getLogger("kiosk.driver").setLevel(logging.ERROR)
    # Closing the devices after an app exits cancels its card-watch thread's wait, which it
    # logs as "card reader: ReaderError" (a shutdown artefact, not a fault of the start-up).
    logging.getLogger("kiosk.app").setLevel(logging.ERROR)

    t0 = time.perf_counter()
    import kiosk.app  # noqa: F401 - textual and the screens, imported once before timing start-ups
    from kiosk.i18n import text

    import_seconds = time.perf_counter() - t0
    welcome = text("ja", "start.gyosei")
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-") as tmp_name, locked_slot() as (port, reader_name):
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        with running_service(tmp / "data") as service:
            print(
                f"prepared `certserver init --demo` data and started the service (own process, uvicorn on "
                f"127.0.0.1, SQLite, real document rendering) in {time.perf_counter() - t0:.1f} s"
            )
            if service.clock_offset > dt.timedelta(minutes=2):
                print(
                    f"NOTE: the service's clock was shifted by {service.clock_offset} into kiosk hours "
                    "(weekday 10:00-16:00 JST)."
                )
            print(
                f"reader: {reader_name!r} (vpcd port {port}), card {RESIDENT} (demo), {os.cpu_count()} CPU(s); "
                f"a visit: 住民票 (juminhyo) for oneself, 1 copy, exact fee"
            )
            timings = bench_transactions(
                service, port, reader_name, tmp / "printed", args.transactions, args.warmup, args.place_ahead
            )
            print(
                "NOTE: pcscd polls the vpcd reader's card presence every ~400 ms, so a removal is reported at "
                "its next poll: with a visit starting just after pcscd saw the card, ~400 ms minus the time "
                f"the card was used (card placed {args.place_ahead:g} s before each visit; --place-ahead)."
            )
            report_transactions(timings)
            if not args.no_simulate:
                seconds, line = simulate_wall_time(service, port, reader_name, tmp / "printed-simulate")
                status = json.loads(line)["status"]
                print(
                    f"reference: one `kiosk simulate --reader pcsc:NAME` process, launch to exit "
                    f"(interpreter, imports, one visit): {_ms(seconds)} wall ({status})"
                )

            print(
                f"\nkiosk start-up (import of kiosk.app + textual in this process: {_ms(import_seconds)}, "
                "not counted below):"
            )
            startups = startup_in_process(service, port, reader_name, tmp / "printed-run", args.startups)
            print(
                f"  in-process, App.run_test() headless 100x30: devices (pcsc reader, client) + KioskApp until "
                f"the StartScreen is mounted: first {_ms(startups[0])}"
                + (
                    f", then median {_ms(statistics.median(startups[1:]))} (n={len(startups) - 1})"
                    if len(startups) > 1
                    else ""
                )
            )
            if args.pty_startups:
                walls = [
                    startup_under_pty(service, port, reader_name, tmp / "printed-run", welcome)
                    for _ in range(args.pty_startups)
                ]
                print(
                    f"  `kiosk run` process under a pseudo-terminal (100x30, xterm-256color), launch until "
                    f"{welcome!r} is drawn: median {_ms(statistics.median(walls))}, "
                    f"min {_ms(min(walls))}, max {_ms(max(walls))} (n={len(walls)})"
                )


if __name__ == "__main__":
    main()
