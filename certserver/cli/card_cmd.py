"""`certserver card issue|revoke|list|enroll` and `certserver ca init|show`: the test JPKI CA
and the virtual cards it issues, from an operator's shell.

`card issue` takes the new card's PIN and signing password from CERTSERVER_CARD_PIN and
CERTSERVER_CARD_PASSWORD, from standard input (--pin-stdin) or from a prompt, never from
the command line, where every user of the machine can read them (`ps`, shell history).
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import hashlib
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from certserver.cli import CliError, service_now, settings_from
from konbini_common.japan import JST

if TYPE_CHECKING:
    from cryptography import x509
    from sqlalchemy.orm import Session

    from certserver.config import Role
    from certserver.pki.ca import CaBundle

PIN_ENV = "CERTSERVER_CARD_PIN"  # 利用者証明用暗証番号 of the card `card issue` makes
PASSWORD_ENV = "CERTSERVER_CARD_PASSWORD"  # 署名用パスワード of that card
T = TypeVar("T")


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    card = subparsers.add_parser("card", help="issue, revoke, list and enroll My Number cards (TEST ONLY)")
    actions = card.add_subparsers(dest="card_command", required=True, metavar="ACTION")

    issue = actions.add_parser("issue", parents=[common], help="issue a virtual card file to a resident")
    issue.add_argument("--resident", required=True, help="resident id, e.g. toride-0001")
    issue.add_argument(
        "--pin-stdin",
        action="store_true",
        help="read the 4-digit PIN (first line) and the signing password, 6-16 of A-Z 0-9 "
        f"(second line) from standard input; else {PIN_ENV} and {PASSWORD_ENV}, else a prompt",
    )
    # Refused, but still parsed: so that `--pin 1234` is never read as another flag's value.
    issue.add_argument("--pin", dest="pin_on_command_line", help=argparse.SUPPRESS)
    issue.add_argument("--password", dest="password_on_command_line", help=argparse.SUPPRESS)
    issue.add_argument(
        "--out", type=Path, default=None, help="card file to write (default <data-dir>/cards/<resident>.card.json)"
    )
    issue.add_argument("--force", action="store_true", help="replace an existing card file")
    issue.set_defaults(handler=issue_command)

    revoke = actions.add_parser(
        "revoke",
        parents=[common],
        help="revoke a card by either serial: both its certificates, or only the signing one for attributes_changed",
    )
    revoke.add_argument("--serial", required=True, help="certificate serial in hex")
    revoke.add_argument(
        "--reason",
        required=True,
        help="lost, stolen, moved_out, deceased, attributes_changed, renewed, returned, key_compromise, unspecified",
    )
    revoke.set_defaults(handler=revoke_command)

    listing = actions.add_parser("list", parents=[common], help="list card certificates")
    listing.add_argument("--resident", default=None, help="only this resident's")
    listing.set_defaults(handler=list_command)

    enroll = actions.add_parser(
        "enroll", parents=[common], help="accept a REAL card's user-authentication certificate for a demo resident"
    )
    enroll.add_argument("--resident", required=True, help="resident id")
    enroll.add_argument("--cert", required=True, type=Path, help="the card's auth certificate (DER or PEM)")
    enroll.add_argument(
        "--trust-ca", required=True, type=Path, help="the CA certificate you choose to trust as its issuer (DER or PEM)"
    )
    enroll.set_defaults(handler=enroll_command)

    ca = subparsers.add_parser("ca", help="the service's test CAs")
    ca_actions = ca.add_subparsers(dest="ca_command", required=True, metavar="ACTION")
    init = ca_actions.add_parser("init", parents=[common], help="create the test CAs (never overwrites)")
    init.set_defaults(handler=ca_init_command)
    show = ca_actions.add_parser("show", parents=[common], help="show the test CAs and trusted external CAs")
    show.set_defaults(handler=ca_show_command)


# -- plumbing -------------------------------------------------------------------------------


def _load_ca(args: argparse.Namespace) -> CaBundle:
    from certserver.pki.ca import CaBundle, CaError

    try:
        return CaBundle.load(settings_from(args).ca_dir)
    except CaError as exc:
        raise CliError(str(exc)) from exc


@contextmanager
def _session(args: argparse.Namespace, role: Role = "centre") -> Iterator[Session]:
    """One transaction on the service's database (in a data folder laid out per role, the
    store of `role`: the JPKI service's holds the card certificates, the municipalities' the
    registry);
    a missing or unmigrated database is a one-line error, never an empty database created
    by accident."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    from certserver.db.session import make_engine, make_session_factory, transaction

    settings = settings_from(args).for_role(role)
    url = settings.resolved_database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise CliError(f"no database in {settings.store_dir}: run `certserver init` first")
    engine = make_engine(url)
    try:
        try:
            migrated = inspect(engine).has_table("card_certificates")
        except SQLAlchemyError as exc:
            raise CliError(f"cannot open the database: {exc.__class__.__name__}") from exc
        if not migrated:
            raise CliError("the database has no card tables: run `certserver init` first")
        with transaction(make_session_factory(engine)) as session:
            yield session
    finally:
        engine.dispose()


@contextmanager
def _stores(args: argparse.Namespace) -> Iterator[tuple[Session, Session | None]]:
    """(the municipalities' registry, the JPKI records): one session and None in the
    all-in-one layout; two, committed JPKI first, when the data folder has a store per role
    (a crash between them leaves a certificate nobody holds: it cannot authenticate)."""
    if not settings_from(args).split_layout:
        with _session(args) as session:
            yield session, None
        return
    with _session(args, "municipalities") as registry, _session(args, "jpki") as jpki:
        yield registry, jpki


def _run(action: Callable[[], T]) -> T:
    """Turn the card service's refusals into one-line CLI errors."""
    from certserver.services.cards import CardServiceError

    try:
        return action()
    except (CardServiceError, ValueError) as exc:
        raise CliError(str(exc)) from exc


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {what} {path}: {exc.strerror}") from exc


def _jst(moment: dt.datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S JST")


# -- card -----------------------------------------------------------------------------------


def _prompt(label: str) -> str:
    """Ask twice without echo. Raises CliError when the entries differ or input ends."""
    try:
        first = getpass.getpass(f"{label}: ")
        if getpass.getpass(f"{label} (again): ") != first:
            raise CliError(f"the two entries of the {label} differ; no card was issued")
    except EOFError:
        raise CliError(f"no {label} was entered") from None
    return first


def card_secrets(args: argparse.Namespace) -> tuple[str, str]:
    """(PIN, signing password) of the card to issue, from --pin-stdin, the environment or a
    prompt. Raises CliError when they are given on the command line or nowhere; the
    message never repeats a secret."""
    for dest, flag in (("pin_on_command_line", "--pin"), ("password_on_command_line", "--password")):
        if getattr(args, dest) is not None:
            raise CliError(
                f"{flag} is refused: a secret on the command line is visible to every user of this "
                f"machine; use {PIN_ENV} and {PASSWORD_ENV}, or --pin-stdin"
            )
    if args.pin_stdin:
        try:
            return sys.stdin.readline().rstrip("\r\n"), sys.stdin.readline().rstrip("\r\n")
        except UnicodeDecodeError:
            raise CliError("standard input is not UTF-8 text; no card was issued") from None
    if os.environ.get(PIN_ENV) and os.environ.get(PASSWORD_ENV):
        return os.environ[PIN_ENV], os.environ[PASSWORD_ENV]
    if sys.stdin.isatty():
        return _prompt("PIN (4 digits)"), _prompt("signing password (6-16 of A-Z 0-9)")
    raise CliError(f"no PIN and signing password: set {PIN_ENV} and {PASSWORD_ENV}, or give --pin-stdin")


def issue_command(args: argparse.Namespace) -> int:
    from certserver.services.cards import check_pin_format, issue_card

    pin, password = card_secrets(args)
    _run(lambda: check_pin_format(pin, password))  # before touching CA or database
    ca = _load_ca(args)
    out: Path = args.out or settings_from(args).cards_dir / f"{args.resident}.card.json"
    if args.out is None:
        out.parent.mkdir(parents=True, exist_ok=True)
    with _stores(args) as (registry, jpki):
        issued = _run(
            lambda: issue_card(
                registry,
                ca,
                args.resident,
                pin=pin,
                password=password,
                out=out,
                overwrite=args.force,
                now=service_now(args),
                jpki=jpki,
            )
        )
    print(f"issued a TEST ONLY card to {issued.resident_id}: {issued.path}")
    print(f"  auth serial {issued.auth_serial}")
    sign = issued.sign_serial or "none (holder under 15)"
    print(f"  sign serial {sign}")
    return 0


def revoke_command(args: argparse.Namespace) -> int:
    from certserver.services.cards import card_by_serial, revoke_card

    with _stores(args) as (registry, jpki):
        records = jpki or registry
        revoked = _run(lambda: revoke_card(records, args.serial, args.reason, now=service_now(args)))
        summary = _run(lambda: card_by_serial(records, args.serial, registry if jpki else None))
    print(f"revoked {len(revoked)} certificate(s) of the card of {summary.resident_id} (reason {args.reason}):")
    for serial in revoked:
        print(f"  serial {serial}")
    return 0


def list_command(args: argparse.Namespace) -> int:
    from certserver.services.cards import list_cards

    with _stores(args) as (registry, jpki):
        rows = list_cards(jpki or registry, args.resident, registry if jpki else None)
    if not rows:
        print("no card certificates" + (f" for {args.resident}" if args.resident else ""))
        return 0
    print("serial\tpurpose\tresident\tstatus\tvalid until\tkind")
    for row in rows:
        status = row.status if row.revocation_reason is None else f"{row.status} ({row.revocation_reason})"
        kind = "enrolled real card" if row.enrolled_real_card else (row.card_file or "-")
        print(f"{row.serial}\t{row.purpose}\t{row.resident_id}\t{status}\t{_jst(row.not_after)}\t{kind}")
    return 0


def enroll_command(args: argparse.Namespace) -> int:
    from certserver.services.cards import enroll_real_card

    cert = _read(args.cert, "the card certificate")
    trust = _read(args.trust_ca, "the CA certificate")
    ca = _load_ca(args)
    with _stores(args) as (registry, jpki):
        summary = _run(
            lambda: enroll_real_card(registry, ca, args.resident, cert, trust, now=service_now(args), jpki=jpki)
        )
    print(
        f"enrolled a real card for {summary.resident_id}: serial {summary.serial}, "
        f"valid until {_jst(summary.not_after)}"
    )
    print("  its issuer is now trusted for enrolled cards only; revoke with `certserver card revoke`")
    return 0


# -- ca -------------------------------------------------------------------------------------


def ca_init_command(args: argparse.Namespace) -> int:
    from certserver.pki.ca import CaBundle, CaError

    ca_dir = settings_from(args).ca_dir
    try:
        CaBundle.create(ca_dir)
    except CaError as exc:
        raise CliError(str(exc)) from exc
    print(f"created the TEST ONLY CAs in {ca_dir}")
    return 0


def _dn(name: x509.Name) -> str:
    """A DN in certificate order (C first), as people read JPKI names."""
    return ", ".join(f"{a.rfc4514_attribute_name}={_attribute_text(a.value)}" for a in name)


def _attribute_text(value: str | bytes) -> str:
    # Only X500UniqueIdentifier holds bytes (JPKI names have none): shown as hex, not b'...'.
    return value if isinstance(value, str) else value.hex()


def _describe(label: str, der: bytes, subject: str, serial: int, not_after: dt.datetime) -> str:
    fingerprint = hashlib.sha256(der).hexdigest()
    return (
        f"{label}\n  subject  {subject}\n  serial   {serial:X}\n  until    {_jst(not_after)}\n  sha256   {fingerprint}"
    )


def ca_show_command(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from certserver.db.models.pki import TrustedCa

    ca = _load_ca(args)
    for label, loaded in (
        ("user-authentication CA (利用者証明用)", ca.auth_ca),
        ("signing CA (署名用)", ca.sign_ca),
        ("document CA (文書署名用)", ca.document_ca),
    ):
        cert = loaded.cert
        print(_describe(label, loaded.der, _dn(cert.subject), cert.serial_number, cert.not_valid_after_utc))
    try:
        with _session(args, "jpki") as session:
            trusted = [(t.subject, t.fingerprint_sha256, t.added_at) for t in session.scalars(select(TrustedCa))]
    except CliError:
        trusted = []
    print("trusted external CAs (for enrolled real cards): " + ("none" if not trusted else ""))
    for subject, fingerprint, added in trusted:
        print(f"  {subject}\n    sha256 {fingerprint}, trusted since {_jst(added)}")
    return 0
