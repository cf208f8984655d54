"""The `mynacard` command. Sub-commands live with what they drive: the virtual card's
(`insert`, `reset-pin`) in cardreader.virtualcard.cli, the host side's (`readers`, `info`,
`verify`) in cardreader.hostcli. Each module defines `register(subparsers)`."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from cardreader import hostcli
from cardreader.cli_error import CliError
from cardreader.virtualcard import cli as virtualcard_cli

# The modules that define `register(subparsers)`. Imported by name, not looked up: a module
# missing from an installation is an ImportError, never a command quietly gone from the
# command line.
_COMMAND_MODULES: tuple[ModuleType, ...] = (virtualcard_cli, hostcli)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mynacard",
        description="Virtual My Number cards for testing, and a JPKI client for real and virtual cards.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log APDUs (PINs are never shown)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.handler(args) or 0)
    except CliError as exc:
        print(f"mynacard: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    # Run through the package module so exception classes are not defined twice
    # (once in __main__, once in cardreader.cli).
    from cardreader.cli import main as _main

    sys.exit(_main())
