"""`certserver municipality stop|resume|list`: the per-municipality stop switch
(service.md §7, Adachi 2023): an operator halts issuance for one municipality at once."""

from __future__ import annotations

import argparse

from certserver.cli import CliError, service_now, session_factory_from


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("municipality", help="stop, resume and list municipalities")
    commands = parser.add_subparsers(dest="municipality_command", required=True, metavar="ACTION")
    stop = commands.add_parser("stop", parents=[common], help="stop issuing for a municipality")
    stop.add_argument("code", help="municipality code (5 digits), e.g. 08217")
    stop.add_argument("--reason", required=True, help="why (shown to operators, logged)")
    stop.set_defaults(handler=stop_municipality)
    resume = commands.add_parser("resume", parents=[common], help="resume issuing for a municipality")
    resume.add_argument("code")
    resume.set_defaults(handler=resume_municipality)
    listing = commands.add_parser("list", parents=[common], help="list municipalities and their state")
    listing.set_defaults(handler=list_municipalities)


def _switch(args: argparse.Namespace, stopped: bool, reason: str | None) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from certserver.db.models.registry import Municipality
    from certserver.db.session import transaction
    from certserver.services import audit

    if stopped and not (reason or "").strip():
        raise CliError("--reason must not be empty")
    factory = session_factory_from(args, "municipalities")
    now = service_now(args)
    try:
        with transaction(factory) as session:
            municipality = session.get(Municipality, args.code)
            if municipality is None:
                raise CliError(f"no municipality with code {args.code!r} (see `certserver municipality list`)")
            municipality.stopped = stopped
            municipality.stop_reason = reason.strip()[:200] if (stopped and reason) else None
            audit.record(
                session,
                at=now,
                action="municipality_stop" if stopped else "municipality_resume",
                outcome="ok",
                detail={"municipality_code": args.code, "reason": reason or ""},
            )
    except SQLAlchemyError as exc:
        raise CliError(
            f"cannot change the municipality: {exc.__class__.__name__} (did you run `certserver init`?)"
        ) from exc
    print(f"{args.code} {'stopped' if stopped else 'resumed'}")
    return 0


def stop_municipality(args: argparse.Namespace) -> int:
    return _switch(args, True, args.reason)


def resume_municipality(args: argparse.Namespace) -> int:
    return _switch(args, False, None)


def list_municipalities(args: argparse.Namespace) -> int:
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from certserver.db.models.registry import Municipality
    from certserver.db.session import transaction

    factory = session_factory_from(args, "municipalities")
    try:
        with transaction(factory) as session:
            rows = [
                (m.code, m.name, m.participating, m.stopped, m.stop_reason)
                for m in session.scalars(select(Municipality).order_by(Municipality.code))
            ]
    except SQLAlchemyError as exc:
        raise CliError(
            f"cannot read municipalities: {exc.__class__.__name__} (did you run `certserver init`?)"
        ) from exc
    for code, name, participating, stopped, reason in rows:
        state = "stopped: " + (reason or "") if stopped else ("open" if participating else "not participating")
        print(f"{code}\t{name}\t{state}")
    return 0
