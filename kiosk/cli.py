"""The `kiosk` command: `run` (the Textual kiosk), `serve` (the kiosk in a browser, one kiosk
per tab), `simulate` (one headless visit, one JSON object out) and `load` (many simulated
kiosks at once).

Bad input and unreachable services give one line on stderr and a non-zero exit, never a
traceback. The PIN given to `simulate` goes to the card and nowhere else.

No secret is taken from the command line, where every user of the machine can read it
(`ps`, /proc, shell history): the kiosk secret comes from KIOSK_SECRET, KIOSK_CREDENTIAL or
--kiosk-secret-file, the operator code from KIOSK_OPERATOR_CODE, the PIN from KIOSK_PIN,
--pin-file, --pin-stdin or a prompt. The old flags are refused with a pointer to these.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiosk.config import KioskSettings

if TYPE_CHECKING:
    from kiosk.junit import JunitCase

logger = logging.getLogger(__name__)


class CliError(Exception):
    """One line for the user; exit code 2."""


# Flags that once took a secret on the command line: still parsed (so that a value is never
# mistaken for another flag's, e.g. `--pin 1234` for `--pin-file 1234`) and refused.
_REFUSED_SECRET_FLAGS = {
    "kiosk_secret_on_command_line": "--kiosk-secret is refused: a secret on the command line is visible to every "
    "user of this machine; use KIOSK_SECRET, KIOSK_CREDENTIAL or --kiosk-secret-file",
    "operator_code_on_command_line": "--operator-code is refused: a code on the command line is visible to every "
    "user of this machine; use KIOSK_OPERATOR_CODE",
    "pin_on_command_line": "--pin is refused: a PIN on the command line is visible to every user of this machine; "
    "use KIOSK_PIN, --pin-file FILE or --pin-stdin",
}


def _refuse_secret_flags(args: argparse.Namespace) -> None:
    """Raises CliError when a secret was given by one of the refused flags."""
    for dest, message in _REFUSED_SECRET_FLAGS.items():
        if getattr(args, dest, None) is not None:
            raise CliError(message)


def read_secret_file(path: Path, what: str) -> str:
    """The first line of `path` (without its line break). Raises CliError when the file
    cannot be read, is not UTF-8 text or its first line is empty; the message never
    quotes the file's content."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read the {what} file {path}: {exc.strerror}") from None
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise CliError(f"the {what} file {path} is not UTF-8 text") from None
    if not lines or not lines[0]:
        raise CliError(f"the {what} file {path} has no {what} on its first line")
    return lines[0]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", help="the issuing service's URL (env KIOSK_SERVER_URL)")
    parser.add_argument("--kiosk-id", help="this kiosk's id (env KIOSK_ID)")
    parser.add_argument(
        "--kiosk-secret-file",
        type=Path,
        metavar="FILE",
        help="read this kiosk's secret from the first line of FILE (or set KIOSK_SECRET, or "
        "KIOSK_CREDENTIAL=id:secret)",
    )
    parser.add_argument("--kiosk-secret", dest="kiosk_secret_on_command_line", help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, help="seconds per request to the service (default 10)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kiosk", description="The convenience-store certificate kiosk (コンビニ交付)."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the kiosk does (never PINs)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run the kiosk's touch screen (Textual)",
        epilog="The operator panel (F12) opens with the code in KIOSK_OPERATOR_CODE "
        "(default 0000); 5 wrong entries in a row lock it for 5 minutes.",
    )
    _common(run)
    run.add_argument(
        "--reader", help="pcsc, pcsc:NAME, virtual:CARDFILE or tray (empty until the card tray places a card)"
    )
    run.add_argument("--demo-cards", type=Path, help="demo card folder (index.json): the operator's card tray")
    run.add_argument("--printer-dir", type=Path, help="where printed documents go (default ./printed)")
    run.add_argument("--operator-code", dest="operator_code_on_command_line", help=argparse.SUPPRESS)
    run.add_argument("--vpcd-port", type=int, help="vpcd port of the card tray (default 35963)")
    run.add_argument(
        "--log-file",
        type=Path,
        help="where the kiosk logs while its screen runs (env KIOSK_LOG_FILE; "
        "default: Textual's devtools console only, never the screen)",
    )
    run.set_defaults(handler=cmd_run)

    sim = commands.add_parser("simulate", help="one headless visit; prints one JSON object")
    _common(sim)
    where = sim.add_mutually_exclusive_group(required=True)
    where.add_argument("--card", type=Path, help="a virtual card file, in an in-process reader")
    where.add_argument("--reader", help="pcsc or pcsc:NAME (a card placed in that reader)")
    pin = sim.add_mutually_exclusive_group()
    pin.add_argument(
        "--pin-file",
        type=Path,
        metavar="FILE",
        help="read the card's 4-digit PIN from the first line of FILE (else KIOSK_PIN, else a prompt)",
    )
    pin.add_argument("--pin-stdin", action="store_true", help="read the PIN from the first line of standard input")
    sim.add_argument("--pin", dest="pin_on_command_line", help=argparse.SUPPRESS)
    sim.add_argument(
        "--certificate",
        default="juminhyo",
        help="juminhyo, kisaijiko, inkan, shotoku_kazei, koseki_zenbu, koseki_kojin, koseki_fuhyo",
    )
    sim.add_argument("--municipality", default="jushochi", choices=("jushochi", "honsekichi"))
    sim.add_argument("--persons", default="self", help="self, all (whole household) or ID,ID")
    sim.add_argument("--options", default="", help="comma-separated option codes, e.g. setainushi")
    sim.add_argument("--copies", type=int, default=1)
    sim.add_argument("--pay", type=int, help="yen to insert (default: the exact fee)")
    sim.add_argument("--out", type=Path, default=Path("printed"), help="printer output folder")
    sim.set_defaults(handler=cmd_simulate)

    serve = commands.add_parser(
        "serve",
        help="the kiosk in a browser on this machine: one kiosk per tab",
        epilog="Each tab takes the next free credential of --credentials (its own kiosk id) and has "
        "its own in-process card tray: F12 (operator code KIOSK_OPERATOR_CODE, default 0000) places "
        "a demo card. The page loads nothing from other hosts.",
    )
    serve.add_argument("--server", help="the issuing service's URL (env KIOSK_SERVER_URL)")
    serve.add_argument(
        "--credentials",
        type=Path,
        required=True,
        help="file with one kiosk credential per line (id:secret or KIOSK_CREDENTIAL=id:secret), "
        "as `certserver kiosk add --count N --out FILE` writes it: one per tab open at a time",
    )
    serve.add_argument("--demo-cards", type=Path, required=True, help="demo card folder (index.json): the card tray")
    serve.add_argument("--printer-dir", type=Path, default=Path("printed"), help="where printed documents go")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    serve.add_argument("--log-dir", type=Path, help="each tab's kiosk logs to LOG_DIR/KIOSK_ID.log")
    serve.set_defaults(handler=cmd_serve)

    load = commands.add_parser("load", help="many simulated kiosks at once; prints figures")
    load.add_argument("--server", help="the issuing service's URL (env KIOSK_SERVER_URL)")
    load.add_argument(
        "--credentials",
        type=Path,
        required=True,
        help="file with one kiosk credential per line (id:secret or KIOSK_CREDENTIAL=id:secret), "
        "at least one per simulated kiosk",
    )
    load.add_argument("--kiosks", type=int, default=50)
    load.add_argument("--transactions", type=int, default=1000)
    load.add_argument("--cards", type=Path, required=True, help="demo card folder with index.json")
    load.add_argument("--out", type=Path, help="printer output folder (default: a temporary one, removed)")
    load.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    load.add_argument("--timeout", type=float, help="seconds per request to the service (default 30)")
    load.add_argument("--junit", type=Path, help="also write a JUnit XML report, one test case per visit")
    load.set_defaults(handler=cmd_load)

    scenario = commands.add_parser(
        "scenario", help="visits with expected outcomes from a TOML file; exit 0 only when all match"
    )
    _common(scenario)
    scenario.add_argument("file", type=Path, help="the scenario (TOML: [[visit]] tables with an expect)")
    scenario.add_argument("--cards", type=Path, help="demo card folder with index.json (else the file's cards =)")
    scenario.add_argument("--out", type=Path, help="printer output folder (default: a temporary one, removed)")
    scenario.add_argument("--junit", type=Path, help="also write a JUnit XML report, one test case per visit")
    scenario.set_defaults(handler=cmd_scenario)
    return parser


def settings_from(args: argparse.Namespace) -> KioskSettings:
    """Environment first, then the command line on top."""
    _refuse_secret_flags(args)
    overrides: dict[str, Any] = {}  # of several types; KioskSettings validates each
    for arg, field in (
        ("server", "server_url"),
        ("kiosk_id", "kiosk_id"),
        ("reader", "reader"),
        ("demo_cards", "demo_cards"),
        ("printer_dir", "printer_dir"),
        ("vpcd_port", "vpcd_port"),
        ("timeout", "http_timeout"),
    ):
        value = getattr(args, arg, None)
        if value is not None:
            overrides[field] = value
    if getattr(args, "kiosk_secret_file", None) is not None:
        overrides["kiosk_secret"] = read_secret_file(args.kiosk_secret_file, "kiosk secret")
    # KIOSK_ID / KIOSK_SECRET are the documented names (not KIOSK_KIOSK_ID).
    for env, field in (("KIOSK_ID", "kiosk_id"), ("KIOSK_SECRET", "kiosk_secret")):
        if field not in overrides and os.environ.get(env):
            overrides[field] = os.environ[env]
    try:
        return KioskSettings(**overrides)
    except ValueError as exc:
        raise CliError(f"bad setting: {str(exc).splitlines()[0]}") from None


def read_pin(args: argparse.Namespace) -> str:
    """The card's PIN from --pin-stdin, --pin-file, KIOSK_PIN or a prompt without echo
    (in that order). Raises CliError when there is none or it is not 4 digits; the message
    never quotes what was given."""
    if args.pin_stdin:
        try:
            pin = sys.stdin.readline().rstrip("\r\n")
        except UnicodeDecodeError:
            raise CliError("standard input is not UTF-8 text") from None
    elif args.pin_file is not None:
        pin = read_secret_file(args.pin_file, "PIN")
    elif os.environ.get("KIOSK_PIN"):
        pin = os.environ["KIOSK_PIN"]
    elif sys.stdin.isatty():
        try:
            pin = getpass.getpass("暗証番号 (PIN, 4 digits): ")
        except EOFError:
            raise CliError("no PIN was entered") from None
    else:
        raise CliError("no PIN: set KIOSK_PIN, or give --pin-file FILE or --pin-stdin")
    if not (len(pin) == 4 and pin.isascii() and pin.isdigit()):
        raise CliError("the PIN must be 4 digits")
    return pin


def cmd_run(args: argparse.Namespace) -> int:
    from cardreader.status import CardError
    from kiosk.app import run_kiosk
    from kiosk.config import build_devices

    settings = settings_from(args)
    if args.log_file is not None:
        settings.log_file = args.log_file
    try:
        devices = build_devices(settings)
    except (ValueError, CardError, OSError) as exc:
        raise CliError(str(exc).splitlines()[0]) from None
    try:
        return run_kiosk(devices)
    except OSError as exc:  # the log file
        raise CliError(f"cannot open the log file: {exc.strerror or exc}") from None
    finally:
        devices.close()


def cmd_simulate(args: argparse.Namespace) -> int:
    from cardreader.status import CardError
    from kiosk.card import VirtualCardReader, open_reader
    from kiosk.config import build_devices
    from kiosk.driver import Driver, VisitScript
    from kiosk.flow import KioskFlow
    from konbini_common.cardfile import CardFileError

    settings = settings_from(args)
    settings.printer_dir = args.out
    pin = read_pin(args)
    if args.pay is not None and (args.pay < 0 or args.pay % 10):
        raise CliError("--pay must be a non-negative multiple of 10 yen")
    try:
        reader = VirtualCardReader(str(args.card)) if args.card else open_reader(args.reader)
        devices = build_devices(settings, reader=reader)
    except (ValueError, CardError, CardFileError, OSError) as exc:
        raise CliError(str(exc).splitlines()[0]) from None
    options = tuple(o for o in args.options.split(",") if o)
    script = VisitScript(
        pin=pin,
        certificate=args.certificate,
        municipality_role=args.municipality,
        persons=args.persons,
        options=options,
        copies=args.copies,
        pay_yen=args.pay,
    )
    try:
        result = Driver(KioskFlow(timeouts=settings.timeouts()), devices.runner).visit(script)
    finally:
        devices.close()
    print(json.dumps(result.to_json(), ensure_ascii=False))
    return 0 if result.status == "issued" else 1


def cmd_serve(args: argparse.Namespace) -> int:
    from kiosk.democards import DemoIndexError, read_index
    from kiosk.load import LoadError, read_credentials
    from kiosk.web import KioskWebServer, Seats, SessionPlan

    settings = settings_from(args)
    try:
        credentials = read_credentials(args.credentials)
        read_index(args.demo_cards)
    except (LoadError, DemoIndexError) as exc:
        raise CliError(str(exc)) from None
    if not credentials:
        raise CliError(f"{args.credentials} holds no kiosk credential")
    plan = SessionPlan(settings.server_url, args.demo_cards, args.printer_dir, args.log_dir, args.verbose)
    server = KioskWebServer(plan, Seats(credentials), host=args.host, port=args.port)
    try:
        server.serve()
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from kiosk.load import LoadError, run_load

    settings = settings_from(args)
    try:
        report = run_load(
            settings,
            credentials_file=args.credentials,
            kiosks=args.kiosks,
            transactions=args.transactions,
            cards_dir=args.cards,
            out=args.out,
            timeout=args.timeout or 30.0,
            progress=sys.stderr,
        )
    except LoadError as exc:
        raise CliError(str(exc)) from None
    if args.junit is not None:
        _write_junit(args.junit, "kiosk.load", report.junit_cases(), elapsed=report.seconds)
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        print(report.summary())
    return 0 if report.wrong_person_documents == 0 and report.errors == 0 else 1


def _write_junit(path: Path, suite: str, cases: list[JunitCase], *, elapsed: float | None = None) -> None:
    from kiosk.junit import write_junit

    try:
        write_junit(path, suite, cases, elapsed=elapsed)
    except OSError as exc:
        raise CliError(f"cannot write the JUnit report {path}: {exc.strerror or exc}") from None


def cmd_scenario(args: argparse.Namespace) -> int:
    """Run a scenario file. Exit 0 when every visit ends as expected, 1 when one does not."""
    import tempfile

    from cardreader.status import CardError
    from kiosk.card import VirtualCardReader
    from kiosk.config import build_devices
    from kiosk.driver import Driver, VisitResult
    from kiosk.flow import KioskFlow
    from kiosk.scenario import PlannedVisit, ScenarioError, junit_cases, load_scenario, run_scenario
    from konbini_common.cardfile import CardFileError

    settings = settings_from(args)
    try:
        visits = load_scenario(args.file, cards_dir=args.cards)
    except ScenarioError as exc:
        raise CliError(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="kiosk-scenario-") as scratch:
        settings.printer_dir = args.out or Path(scratch) / "printed"
        settings.state_dir = Path(scratch) / "state"

        def run_visit(visit: PlannedVisit) -> VisitResult:
            try:
                devices = build_devices(settings, reader=VirtualCardReader(str(visit.card)))
            except (ValueError, CardError, CardFileError, OSError) as exc:
                raise CliError(f"{visit.name}: {str(exc).splitlines()[0]}") from None
            try:
                return Driver(KioskFlow(timeouts=settings.timeouts()), devices.runner).visit(visit.script)
            finally:
                devices.close()

        outcomes = run_scenario(visits, run_visit)
    for outcome in outcomes:
        verdict = "ok  " if outcome.passed else "FAIL"
        detail = "" if outcome.passed else ": " + "; ".join(outcome.mismatches)
        print(f"{verdict} {outcome.visit.name} ({outcome.seconds:.2f} s){detail}")
    failed = sum(1 for o in outcomes if not o.passed)
    print(f"{len(outcomes) - failed} of {len(outcomes)} visits as expected")
    if args.junit is not None:
        _write_junit(args.junit, "kiosk.scenario", junit_cases(outcomes))
    return 0 if failed == 0 else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Printed certificates name residents: whatever this process writes is its own (0600 / 0700).
    previous_umask = os.umask(0o077)
    try:
        return int(args.handler(args) or 0)
    except CliError as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        os.umask(previous_umask)


if __name__ == "__main__":
    sys.exit(main())
