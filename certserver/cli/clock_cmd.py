"""`certserver clock show|forward`: the pretended clock of a demo or training service.

A service started with `serve --pretend-time` lives in a moment of its own; `clock forward`
moves it on while it runs (every worker, and every command run beside it on the same data
folder, follows), to show what closing time, a holiday or a transaction's time-out looks
like without waiting. Forward only: the service never goes back before what it recorded. A
service on the host's time (production-like) has no clock to move.
"""

from __future__ import annotations

import argparse
import re
from datetime import timedelta

from certserver.cli import CliError, session_factory_from, settings_from

_PART = re.compile(r"(\d+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_STEP = timedelta(days=3660)  # ten years: past every card's validity, far from overflow


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("clock", help="show or move a pretending service's clock")
    commands = parser.add_subparsers(dest="clock_command", required=True, metavar="ACTION")
    show = commands.add_parser("show", parents=[common], help="the service's time now")
    show.set_defaults(handler=show_clock)
    forward = commands.add_parser(
        "forward", parents=[common], help="move a pretending service's clock forward (it follows while running)"
    )
    forward.add_argument("--by", required=True, type=parse_step, help="how far, e.g. 90m, 2h, 1d, 1d6h")
    forward.set_defaults(handler=forward_clock)


def parse_step(text: str) -> timedelta:
    """A step like `90s`, `15m`, `2h`, `1d6h` (positive, at most ten years). Raises
    argparse.ArgumentTypeError (argparse prints it as one line)."""
    compact = text.strip().lower()
    if not compact or _PART.sub("", compact):
        raise argparse.ArgumentTypeError(f"{text!r} is not a step like 90m, 2h or 1d6h")
    step = timedelta(seconds=sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _PART.findall(compact)))
    if step <= timedelta(0) or step > MAX_STEP:
        raise argparse.ArgumentTypeError("the step must be more than zero and at most ten years")
    return step


def _recorded(args: argparse.Namespace):  # -> ServiceClock
    from certserver.clock import ClockFileError, load_clock

    data_dir = settings_from(args).data_dir
    if not data_dir.is_dir():
        raise CliError(f"no data folder at {data_dir}: give the --data-dir the service runs on")
    try:
        return load_clock(data_dir)
    except ClockFileError as exc:
        raise CliError(str(exc)) from exc


def show_clock(args: argparse.Namespace) -> int:
    from konbini_common.japan import JST

    clock = _recorded(args)
    now = clock()
    kind = f"pretended ({clock.offset.total_seconds():+.0f} s from the host)" if clock.pretending else "the host's time"
    print(f"{now.astimezone(JST):%Y-%m-%d %H:%M:%S} JST ({now:%Y-%m-%dT%H:%M:%SZ}), {kind}")
    return 0


def forward_clock(args: argparse.Namespace) -> int:
    from certserver.clock import ClockFileError, ServiceClock, save_clock
    from certserver.db.session import transaction
    from certserver.services import audit
    from konbini_common.japan import JST

    clock = _recorded(args)
    if not clock.pretending:
        raise CliError(
            "the service runs on the host's time: only a service started with `serve --pretend-time` "
            "has a clock to move"
        )
    moved = ServiceClock(clock.offset + args.by)
    factory = session_factory_from(args)
    with transaction(factory) as session:  # the step is in the audit log, dated where it lands
        audit.record(
            session, at=moved(), action="clock_forward", outcome="ok", detail={"by_seconds": args.by.total_seconds()}
        )
    try:
        save_clock(settings_from(args).data_dir, moved)
    except ClockFileError as exc:
        raise CliError(str(exc)) from exc
    print(f"the service's clock now reads {moved().astimezone(JST):%Y-%m-%d %H:%M:%S} JST")
    return 0
