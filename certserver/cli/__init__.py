"""The `certserver` command. Each area registers its own sub-commands from its module, so
the command line grows without one file that every change touches."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from types import ModuleType

# Every line the command logs, in every process of `serve` (its workers too): when, how bad, where.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class CliError(Exception):
    """An error to print as one clear line (exit code 2 unless `exit_code` says)."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


VERBOSE_HELP = "also print what the service does (INFO lines) and library deprecation warnings"

# The commands whose INFO lines are their job: the service's log.
_LOGGING_COMMANDS = frozenset({"serve"})


def quiet_console(verbose: bool, command: str) -> None:
    """An operator's console shows results and errors: INFO lines and the libraries'
    deprecation warnings only with -v (the service's log keeps its INFO lines)."""
    level = logging.INFO if verbose or command in _LOGGING_COMMANDS else logging.WARNING
    logging.basicConfig(level=level, format=LOG_FORMAT)
    # Alembic announces each of its plugins at INFO on every start: noise for an operator.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if not verbose:
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        # cryptography's own deprecation warnings are UserWarnings (a library's import of DSA).
        warnings.filterwarnings("ignore", message=r".* is deprecated", category=UserWarning)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder of the service's database, CA keys and card files (default ./var, or $CERTSERVER_DATA_DIR)",
    )
    # Also after the command (`certserver verify -v FILE`); SUPPRESS keeps the top-level value.
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
    parser = argparse.ArgumentParser(
        prog="certserver",
        description="Issuing service of the konbini-kiosk emulator (test JPKI CA, resident registry, kiosk API). "
        "TEST ONLY: every key and certificate it makes is for testing.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _command_modules():
        module.register(subparsers, common)
    return parser


def _command_modules() -> tuple[ModuleType, ...]:
    """The modules that define `register(subparsers, common)`; each adds its sub-commands,
    whose handlers take the parsed arguments and return an exit code. Imported by name, not
    looked up: a module missing from an installation is an ImportError here, never a
    command quietly gone from the command line. (Imported when called: they import CliError
    from this package.)"""
    from certserver.cli import (
        audit_cmd,  # audit verify
        card_cmd,  # card issue|revoke|list|enroll
        clock_cmd,  # clock show|forward
        init_cmd,  # init [--demo]
        kiosk_cmd,  # kiosk add|list
        municipality_cmd,  # municipality stop|resume|list
        serve_cmd,  # serve
        transactions_cmd,  # transactions summary|unconfirmed
        verify_cmd,  # verify FILE.pdf | --qr TEXT
    )

    return (
        init_cmd,
        serve_cmd,
        card_cmd,
        kiosk_cmd,
        municipality_cmd,
        clock_cmd,
        audit_cmd,
        transactions_cmd,
        verify_cmd,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet_console(bool(getattr(args, "verbose", False)), args.command)
    # Whatever this process creates (database, WAL, keys, logs) is its own: 0600 / 0700.
    previous_umask = os.umask(0o077)
    try:
        return int(args.handler(args) or 0)
    except CliError as exc:
        print(f"certserver: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    finally:
        os.umask(previous_umask)


def settings_from(args: argparse.Namespace):  # -> Settings (import kept lazy for start-up time)
    """Settings from the environment, with --data-dir taking precedence."""
    from certserver.config import Settings

    if getattr(args, "data_dir", None) is not None:
        return Settings(data_dir=args.data_dir)
    return Settings()


def service_engine(args: argparse.Namespace, role: str = "centre"):  # -> Engine
    """The service's own engine for the settings of `args` (on SQLite every transaction takes
    the write lock at BEGIN, so a command never fails half-way against a running server); in
    a data folder laid out per role, on the store of `role` ("centre": kiosks, transactions,
    JPKI records; "municipalities": the registries). Raises CliError when the deployment
    check refuses the settings."""
    from certserver.app import DeploymentCheckError, build_engine

    try:
        return build_engine(settings_from(args).for_role(role))
    except DeploymentCheckError as exc:
        raise CliError(str(exc)) from exc


def session_factory_from(args: argparse.Namespace, role: str = "centre"):  # -> sessionmaker
    """Sessions on `service_engine(args, role)`. Raises CliError (see service_engine)."""
    from certserver.db.session import make_session_factory

    return make_session_factory(service_engine(args, role))


def service_now(args: argparse.Namespace) -> datetime:
    """The service's clock now, as `certserver serve` recorded it in the data folder (the
    host's time when it pretends nothing), so that what a command writes (a revocation, an
    audit entry) carries the time the service lives in. Raises CliError."""
    from certserver.clock import ClockFileError, load_clock

    try:
        return load_clock(settings_from(args).data_dir)()
    except ClockFileError as exc:
        raise CliError(str(exc)) from exc


if __name__ == "__main__":
    sys.exit(main())
