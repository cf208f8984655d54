"""`certserver kiosk add|list`: register the kiosks allowed to call the API."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from certserver.cli import CliError, service_now, session_factory_from


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("kiosk", help="register and list kiosks")
    commands = parser.add_subparsers(dest="kiosk_command", required=True, metavar="ACTION")
    add = commands.add_parser(
        "add",
        parents=[common],
        help="register a kiosk (or --count N kiosks) and print or write the credentials once",
        epilog="certserver kiosk add --count 50 --out kiosks.txt registers LOAD-001 ... LOAD-050 in one "
        "transaction and writes their credentials (id:secret, one per line, mode 0600) for `kiosk load` "
        "and `kiosk serve`.",
    )
    add.add_argument(
        "--id", dest="kiosk_id", help="kiosk id, e.g. TORIDE-001; with --count the prefix of the ids (default LOAD)"
    )
    add.add_argument("--store", help="store name shown in the audit log (required without --count)")
    add.add_argument("--count", type=int, help="register this many kiosks at once: PREFIX-001, PREFIX-002 ...")
    add.add_argument(
        "--out", type=Path, help="write the credentials to this file (id:secret per line, 0600) instead of printing"
    )
    add.set_defaults(handler=add_kiosk)
    listing = commands.add_parser("list", parents=[common], help="list registered kiosks")
    listing.set_defaults(handler=list_kiosks)


def _kiosk_ids(args: argparse.Namespace) -> list[str]:
    """The ids to register. Raises CliError for a missing id or store, or a bad count."""
    if args.count is None:
        if not args.kiosk_id or not args.store:
            raise CliError("give --id and --store (or --count N for a batch)")
        return [args.kiosk_id]
    if not 1 <= args.count <= 10_000:
        raise CliError("--count must be 1 to 10000")
    prefix = args.kiosk_id or "LOAD"
    digits = max(3, len(str(args.count)))
    return [f"{prefix}-{number:0{digits}d}" for number in range(1, args.count + 1)]


def _write_credentials(path: Path, lines: list[str]) -> None:
    """`lines` into `path`, created (or truncated) with mode 0600. Raises CliError."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # an older file keeps its mode otherwise
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("".join(f"{line}\n" for line in lines))
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None


def add_kiosk(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from certserver.db.session import transaction
    from certserver.services.kiosks import KioskError, register_kiosk

    kiosk_ids = _kiosk_ids(args)
    store = args.store or "テスト店"
    now = service_now(args)
    # All in one transaction: a batch is registered whole or not at all (a taken id stops it).
    try:
        with transaction(session_factory_from(args)) as session:
            credentials = [register_kiosk(session, kiosk_id, store, now) for kiosk_id in kiosk_ids]
    except KioskError as exc:
        raise CliError(str(exc)) from exc
    except SQLAlchemyError as exc:
        raise CliError(f"cannot register the kiosk: {exc.__class__.__name__} (did you run `certserver init`?)") from exc
    if args.out is not None:
        _write_credentials(args.out, [f"{c.kiosk_id}:{c.secret}" for c in credentials])
        print(f"{len(credentials)} kiosk(s) registered ({kiosk_ids[0]} ... {kiosk_ids[-1]}); credentials in {args.out}")
        return 0
    for credential in credentials:
        print(f"kiosk {credential.kiosk_id} registered. Its credential (shown only now; keep it secret):")
        print(f"Authorization: {credential.bearer}")
        print(f"KIOSK_CREDENTIAL={credential.kiosk_id}:{credential.secret}")
    return 0


def list_kiosks(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from certserver.db.session import transaction
    from certserver.services.kiosks import list_kiosks as all_kiosks

    try:
        with transaction(session_factory_from(args)) as session:
            rows = [(k.id, k.store_name, k.active, k.created_at) for k in all_kiosks(session)]
    except SQLAlchemyError as exc:
        raise CliError(f"cannot read kiosks: {exc.__class__.__name__} (did you run `certserver init`?)") from exc
    if not rows:
        print("no kiosks registered (certserver kiosk add --id ID --store NAME)")
    for kiosk_id, store, active, created in rows:
        print(f"{kiosk_id}\t{store}\t{'active' if active else 'inactive'}\t{created:%Y-%m-%d %H:%M}")
    return 0
