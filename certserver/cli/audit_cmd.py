"""`certserver audit verify`: recompute the audit log's hash chain."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from certserver.cli import CliError, session_factory_from

if TYPE_CHECKING:  # SQLAlchemy is imported where used at run time (kept lazy for start-up time)
    from sqlalchemy.orm import Session, sessionmaker


def _initialised(factory: sessionmaker[Session]) -> bool:
    """True when the database carries a migration revision (`certserver init` ran)."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with factory() as session:
            return bool(MigrationContext.configure(session.connection()).get_current_heads())
    except SQLAlchemyError:
        return False


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0] if text else ""


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("audit", help="check the audit log")
    commands = parser.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = commands.add_parser("verify", parents=[common], help="verify the hash chain (exit 1 if broken)")
    verify.set_defaults(handler=verify_log)


def verify_log(args: argparse.Namespace) -> int:
    """Verify the audit log; in a data folder laid out per role, each store's own log."""
    from certserver.cli import settings_from

    if not settings_from(args).split_layout:
        _verify_store(args, "centre", label="")
        return 0
    for role in ("centre", "municipalities"):
        _verify_store(args, role, label=f"{role}: ")
    return 0


def _verify_store(args: argparse.Namespace, role: str, label: str) -> None:
    """Print that the store's log is intact. Raises CliError (exit 1) when it is broken."""
    from sqlalchemy.exc import SQLAlchemyError

    from certserver.db.session import transaction
    from certserver.services.audit import verify_chain

    factory = session_factory_from(args, role)
    try:
        with transaction(factory) as session:
            report = verify_chain(session)
    except SQLAlchemyError as exc:
        if not _initialised(factory):
            raise CliError(
                f"cannot read the {label}audit log: {exc.__class__.__name__} (did you run `certserver init`?)"
            ) from exc
        # The schema is there but the log cannot be read: damaged, not missing.
        raise CliError(
            f"{label}audit log BROKEN: the audit table cannot be read ({exc.__class__.__name__}: {_first_line(exc)})",
            exit_code=1,
        ) from exc
    if report.ok:
        print(f"{label}audit log intact: {report.entries_checked} entries")
        return
    raise CliError(
        f"{label}audit log BROKEN at entry {report.broken_at_seq}: {report.problem} "
        f"({report.entries_checked} entries verified before it)",
        exit_code=1,
    )
