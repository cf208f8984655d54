"""`certserver kiosk add|list`: register the kiosks allowed to call the API."""

from __future__ import annotations

import argparse

from certserver.cli import CliError, service_now, session_factory_from


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("kiosk", help="register and list kiosks")
    commands = parser.add_subparsers(dest="kiosk_command", required=True, metavar="ACTION")
    add = commands.add_parser("add", parents=[common], help="register a kiosk and print its credential once")
    add.add_argument("--id", required=True, dest="kiosk_id", help="kiosk id, e.g. TORIDE-001")
    add.add_argument("--store", required=True, help="store name shown in the audit log")
    add.set_defaults(handler=add_kiosk)
    listing = commands.add_parser("list", parents=[common], help="list registered kiosks")
    listing.set_defaults(handler=list_kiosks)


def add_kiosk(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from certserver.db.session import transaction
    from certserver.services.kiosks import KioskError, register_kiosk

    try:
        with transaction(session_factory_from(args)) as session:
            credential = register_kiosk(session, args.kiosk_id, args.store, service_now(args))
    except KioskError as exc:
        raise CliError(str(exc)) from exc
    except SQLAlchemyError as exc:
        raise CliError(f"cannot register the kiosk: {exc.__class__.__name__} (did you run `certserver init`?)") from exc
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
