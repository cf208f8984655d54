"""The virtual card's `mynacard` sub-commands.

`mynacard insert CARDFILE [--host H] [--port P]` puts the card into a vpcd reader and serves
it until Ctrl-C or SIGTERM. SIGUSR1 toggles the card: removes it (PC/SC clients see an empty
reader) or inserts it again, as a resident taking the card off the reader and back.
Exit codes: 0 stopped, 2 bad card file or arguments, 6 reader unavailable or lost.
`--fault SPEC` (repeatable) makes the card misbehave on purpose (virtualcard/faults.py):
`delay=0.2`, `delay=0.1-0.5`, `pull-after=N`, `pull-during=N`, `sw=6F00:read-binary`,
`corrupt=read-binary:OFFSET`, `forget-verified=sign`, `no-power-on`; each fault that fires
is logged on stderr with the APDU it hit (header and length, never a PIN). A card pulled out
by a fault stays out until SIGUSR1 inserts it again.

`mynacard reset-pin CARDFILE [--which auth|sign|kenhojo] [--pin-stdin]` is the municipal
office's unlock (暗証番号の再設定): a new PIN (prompted twice without echo, or the first line of
standard input) and a full retry counter. It is an administrator's tool: the PIN is never
printed or logged, nor taken from the command line, where every user of the machine can
read it (`--new-pin` is refused).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import signal
import sys
import threading
from types import FrameType

from cardreader.cli_error import CliError
from cardreader.status import SW, ReaderError
from cardreader.virtualcard.card import VirtualCard
from cardreader.virtualcard.faults import Fault, FaultPlan, FaultSpecError, parse_fault
from cardreader.virtualcard.pins import FOUR_DIGITS, SIGN_PASSWORD
from cardreader.virtualcard.store import CardStore, CardStoreError
from cardreader.virtualcard.vpcd import DEFAULT_HOST, DEFAULT_PORT, VpcdBridge
from konbini_common.cardfile import CardFileError, PinRecord, make_verifier

EXIT_READER = 6  # as cardreader.hostcli: reader unavailable

FIRST_VPCD_PORT = 35963  # each vpcd config entry gives two readers, "... 00 00" and "... 00 01"

PIN_RULES = {
    "auth": (FOUR_DIGITS, "4 digits"),  # 利用者証明用暗証番号
    "kenhojo": (FOUR_DIGITS, "4 digits"),  # 券面事項入力補助用暗証番号
    "sign": (SIGN_PASSWORD, "6 to 16 letters A-Z and digits"),  # 署名用パスワード
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `insert` and `reset-pin` to the `mynacard` parser."""
    insert = subparsers.add_parser(
        "insert", help="put a virtual card into a vpcd reader (until Ctrl-C; SIGUSR1 toggles removal)"
    )
    insert.add_argument("cardfile", help="the card file (JSON) of the virtual card")
    insert.add_argument("--host", default=DEFAULT_HOST, help="where vpcd listens (default %(default)s)")
    insert.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="vpcd port: 35963 = 'Virtual PCD 00 00', 35964 = '... 00 01' (default %(default)s)",
    )
    insert.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="make the card misbehave (repeatable): delay=SECONDS[-MAX], pull-after=N, pull-during=N, "
        "sw=SW:COMMAND[*TIMES], corrupt=COMMAND[:OFFSET][*TIMES], forget-verified=COMMAND[*TIMES], no-power-on; "
        "COMMAND is select, read-binary, read-record, verify, change-reference-data, get-data, sign, any "
        "or a hex INS",
    )
    insert.add_argument(
        "--fault-seed", type=int, default=None, help="seed of the random delays of delay=MIN-MAX (repeatable runs)"
    )
    insert.set_defaults(handler=run_insert)

    reset = subparsers.add_parser("reset-pin", help="set a new PIN and unlock it (administrator)")
    reset.add_argument("cardfile", help="the card file (JSON) of the virtual card")
    reset.add_argument(
        "--which",
        choices=sorted(PIN_RULES),
        default="auth",
        help="auth = 利用者証明用暗証番号, sign = 署名用パスワード, kenhojo = 券面事項入力補助用暗証番号",
    )
    reset.add_argument(
        "--pin-stdin",
        action="store_true",
        help="read the new PIN from the first line of standard input (else it is prompted twice without echo)",
    )
    # Refused, but still parsed: a PIN on the command line is visible to every user (ps).
    reset.add_argument("--new-pin", "--pin", dest="pin_on_command_line", help=argparse.SUPPRESS)
    reset.set_defaults(handler=run_reset_pin)


def _reader_name(port: int) -> str:
    index = port - FIRST_VPCD_PORT
    if 0 <= index <= 1:
        return f"Virtual PCD 00 {index:02d}"
    return f"the vpcd reader on port {port}"


def _load_card(path: str) -> VirtualCard:
    try:
        return VirtualCard(path)
    except CardFileError as exc:
        raise CliError(str(exc)) from exc


def _faults(specs: list[str]) -> list[Fault]:
    """The --fault options. Raises CliError for a bad one."""
    try:
        return [parse_fault(spec) for spec in specs]
    except FaultSpecError as exc:
        raise CliError(f"--fault: {exc}") from exc


def run_insert(args: argparse.Namespace) -> int:
    """Serve the card until SIGINT/SIGTERM. Raises CliError (bad card file, bad --fault, no vpcd)."""
    faults = _faults(args.fault)
    card = _load_card(args.cardfile)
    card.faults = FaultPlan(seed=args.fault_seed).add(*faults)
    if faults:
        logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    bridge = VpcdBridge(card, host=args.host, port=args.port)
    try:
        bridge.insert()
    except ReaderError as exc:
        raise CliError(str(exc), EXIT_READER) from exc
    reader = _reader_name(args.port)
    stop, toggle = threading.Event(), threading.Event()

    def on_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    def on_toggle(signum: int, frame: FrameType | None) -> None:
        toggle.set()

    # Handlers first: whoever reads the banner may signal at once.
    previous = {sig: signal.signal(sig, on_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, on_toggle)
    want_inserted = True
    try:
        print(
            f"card {args.cardfile} inserted into {reader} ({args.host}:{args.port}); "
            "Ctrl-C stops, SIGUSR1 removes/re-inserts",
            flush=True,
        )
        while not stop.wait(0.1):
            if bridge.pulled_out.is_set() and want_inserted:
                want_inserted = False
                print(f"card pulled out of {reader} by a fault (SIGUSR1 inserts it again)", flush=True)
            if toggle.is_set():
                toggle.clear()
                want_inserted = not want_inserted
                _toggle(bridge, want_inserted, reader)
            elif want_inserted and not bridge.inserted:
                raise CliError(f"vpcd closed the connection of {reader}; is pcscd still running?", EXIT_READER)
    finally:
        bridge.remove()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(f"card removed from {reader}", flush=True)
    return 0


def _toggle(bridge: VpcdBridge, insert: bool, reader: str) -> None:
    if insert:
        try:
            bridge.insert()
        except ReaderError as exc:
            raise CliError(str(exc), EXIT_READER) from exc
        print(f"card inserted into {reader}", flush=True)
    else:
        bridge.remove()
        print(f"card removed from {reader} (SIGUSR1 inserts it again)", flush=True)


def _read_line(_prompt: str) -> str:
    """One line of standard input without its line break. Raises EOFError at its end."""
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line.rstrip("\r\n")


def _new_pin(args: argparse.Namespace) -> str:
    """The new PIN from standard input or a prompt. Raises CliError (given on the command
    line, not entered, entries differ, wrong form); the message never repeats it."""
    rule, description = PIN_RULES[args.which]
    if args.pin_on_command_line is not None:
        raise CliError(
            "--pin/--new-pin is refused: a PIN on the command line is visible to every user of this machine; "
            "use --pin-stdin or the prompt; nothing was changed"
        )
    # Without a terminal (a pipe) the two entries are read as lines, with no prompt and no
    # echo warning on stderr, so a script sees only the one-line result.
    ask = getpass.getpass if sys.stdin.isatty() else _read_line
    try:
        secret = _read_line("") if args.pin_stdin else ask(f"new {args.which} PIN: ")
        if not args.pin_stdin and ask(f"new {args.which} PIN again: ") != secret:
            raise CliError("the two entries differ; nothing was changed")
    except EOFError:
        raise CliError("no new PIN was entered; nothing was changed") from None
    except UnicodeDecodeError:
        raise CliError("the new PIN is not UTF-8 text; nothing was changed") from None
    if args.which == "sign":
        secret = secret.upper()  # clients upper-case the password before sending (jpki.md §4.1)
    if not secret.isascii() or rule.check(secret.encode("ascii")) != SW.OK:
        raise CliError(f"a {args.which} PIN must be {description}; nothing was changed")
    return secret


def run_reset_pin(args: argparse.Namespace) -> int:
    """Set a new PIN with a full counter. Raises CliError (bad file, bad PIN)."""
    try:
        store = CardStore.open(args.cardfile)
    except CardFileError as exc:
        raise CliError(str(exc)) from exc
    if args.which not in store.card.pins:
        raise CliError(f"the card file has no {args.which} PIN")
    secret = _new_pin(args)

    def replace(pins: dict[str, PinRecord]) -> tuple[int, bool]:
        record = pins[args.which]
        pins[args.which] = PinRecord(make_verifier(secret), record.max_tries, record.max_tries)
        return record.max_tries, True

    try:
        tries = store.update_pins(replace)
    except (CardStoreError, KeyError) as exc:
        raise CliError(f"the card file could not be updated: {exc}") from exc
    print(f"the {args.which} PIN of {args.cardfile} was reset; {tries} tries", file=sys.stdout)
    return 0
