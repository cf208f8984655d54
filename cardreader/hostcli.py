"""Host-side `mynacard` sub-commands: `readers`, `info`, `verify`.

`--reader NAME` talks to a card through PC/SC; `--card CARDFILE` to a virtual card in this
process. Exit codes of `verify`: 0 PIN accepted, 3 wrong PIN, 4 PIN locked, 5 no card,
6 reader unavailable, 7 not a My Number card, 2 anything else (bad input, card fault).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from pathlib import Path

from cryptography import x509

from cardreader.cli_error import CliError
from cardreader.jpki import JpkiClient, PinFormatError, pin_bytes
from cardreader.status import (
    CardError,
    CardRemovedError,
    NoCardError,
    NotMyNumberCardError,
    PinLockedError,
    ReaderError,
    WrongPinError,
)
from cardreader.transport import Transport
from konbini_common.cardfile import CardFileError

EXIT_WRONG_PIN = 3
EXIT_PIN_LOCKED = 4
EXIT_NO_CARD = 5
EXIT_READER = 6
EXIT_NOT_MY_NUMBER_CARD = 7


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `readers`, `info` and `verify` to the `mynacard` parser."""
    readers = subparsers.add_parser("readers", help="list PC/SC card readers")
    readers.set_defaults(handler=_run_readers)

    info = subparsers.add_parser("info", help="show the user-auth certificate and PIN tries (no PIN asked)")
    _add_card_source(info)
    info.add_argument(
        "--save-certificate",
        metavar="FILE",
        type=Path,
        help="also write the user-auth certificate (DER) to FILE, e.g. for `certserver card enroll`",
    )
    info.set_defaults(handler=_run_info)

    verify = subparsers.add_parser("verify", help="check the user-auth PIN (利用者証明用暗証番号)")
    _add_card_source(verify)
    verify.add_argument(
        "--pin-stdin", action="store_true", help="read the PIN from the first line of standard input instead of asking"
    )
    # Refused, but parsed: argparse would otherwise take `--pin 1234` for `--pin-stdin` and
    # print the PIN back in its error; a PIN on the command line is visible to every user.
    verify.add_argument("--pin", dest="pin_on_command_line", help=argparse.SUPPRESS)
    verify.set_defaults(handler=_run_verify)


def _add_card_source(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--reader", metavar="NAME", help="PC/SC reader (default: the first one holding a card)")
    source.add_argument("--card", metavar="CARDFILE", help="use a virtual card file in this process")


def _open_transport(args: argparse.Namespace) -> Transport:
    if args.card is not None:
        from cardreader.inprocess import VirtualCardTransport

        try:
            return VirtualCardTransport.from_path(args.card)
        except CardFileError as exc:
            raise CliError(str(exc)) from None
    from cardreader.pcsc import PcscTransport

    return PcscTransport(args.reader)


def _card_error(exc: CardError) -> CliError:
    """One line and the exit code for a card problem."""
    codes: list[tuple[type[CardError], int]] = [
        (WrongPinError, EXIT_WRONG_PIN),
        (PinLockedError, EXIT_PIN_LOCKED),
        (NoCardError, EXIT_NO_CARD),
        (CardRemovedError, EXIT_NO_CARD),
        (ReaderError, EXIT_READER),
        (NotMyNumberCardError, EXIT_NOT_MY_NUMBER_CARD),
    ]
    for kind, code in codes:
        if isinstance(exc, kind):
            if isinstance(exc, WrongPinError):
                return CliError(f"{exc.title_ja} / {exc.title_en} ({exc.tries_left} tries left)", code)
            return CliError(_card_error_line(exc), code)
    return CliError(_card_error_line(exc))


def _card_error_line(exc: CardError) -> str:
    """Both titles and the detail, without saying the English title twice when the detail
    starts with it ("The card could not be read (SW 6F00)")."""
    detail = str(exc)
    if detail.startswith(exc.title_en):
        return f"{exc.title_ja} / {detail}"
    return f"{exc.title_ja} / {exc.title_en}: {detail}"


def _with_client(args: argparse.Namespace, action: Callable[[JpkiClient], int]) -> int:
    try:
        with _open_transport(args) as transport:
            return action(JpkiClient(transport))
    except CardError as exc:
        raise _card_error(exc) from None


def _run_readers(args: argparse.Namespace) -> int:
    from cardreader.pcsc import ReaderMonitor, list_readers

    try:
        names = list_readers()
        if not names:
            raise CliError("no card reader is connected", EXIT_READER)
        for name in names:
            with ReaderMonitor(name) as monitor:
                state = "card present" if monitor.card_present else "empty"
            print(f"{name}\t{state}")
    except CardError as exc:
        raise _card_error(exc) from None
    return 0


def _run_info(args: argparse.Namespace) -> int:
    def show(client: JpkiClient) -> int:
        label = client.read_token_label()
        der = client.read_auth_certificate()
        auth_tries = client.auth_pin_tries_left()
        sign_tries = client.sign_password_tries_left()
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            raise CliError("the user-auth certificate on the card is not valid DER") from None
        print(f"token label:        {label}")
        print(f"auth certificate:   {cert.subject.rfc4514_string()}")
        print(f"  issuer:           {cert.issuer.rfc4514_string()}")
        print(f"  serial:           {cert.serial_number:X}")
        print(f"  valid until:      {cert.not_valid_after_utc.isoformat()}")
        print(f"auth PIN tries:     {auth_tries}")
        print(f"sign password tries: {sign_tries}")
        if args.save_certificate is not None:
            try:
                args.save_certificate.write_bytes(der)
            except OSError as exc:
                raise CliError(f"cannot write {args.save_certificate}: {exc.strerror}") from None
            print(f"certificate saved:  {args.save_certificate}")
        return 0

    return _with_client(args, show)


def _read_pin(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    try:
        return getpass.getpass("暗証番号 (PIN, 4 digits): ")
    except EOFError:
        raise CliError("no PIN was entered") from None


def _run_verify(args: argparse.Namespace) -> int:
    if args.pin_on_command_line is not None:
        raise CliError(
            "--pin is refused: a PIN on the command line is visible to every user of this machine; "
            "use --pin-stdin or the prompt"
        )
    pin = _read_pin(args.pin_stdin)
    try:
        pin_bytes(pin)  # a typo must cost no try, and needs no card to be found
    except PinFormatError as exc:
        raise CliError(str(exc)) from None

    def verify(client: JpkiClient) -> int:
        with client.transport.exclusive():
            client.verify_auth_pin(pin)
        print("暗証番号を確認しました / PIN accepted")
        return 0

    return _with_client(args, verify)
