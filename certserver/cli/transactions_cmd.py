"""`certserver transactions summary|unconfirmed`: the operator's reconciliation of payments
(certserver.services.reconciliation)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from certserver.cli import CliError, service_engine

if TYPE_CHECKING:  # SQLAlchemy is imported where used at run time (kept lazy for start-up time)
    from sqlalchemy.orm import Session

T = TypeVar("T")


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("transactions", help="reconcile payments; released transactions to settle")
    commands = parser.add_subparsers(dest="transactions_command", required=True, metavar="ACTION")
    summary = commands.add_parser("summary", parents=[common], help="transactions, paid and refunded yen per state")
    summary.set_defaults(handler=show_summary)
    pending = commands.add_parser(
        "unconfirmed", parents=[common], help="released transactions whose kiosk never said what it printed"
    )
    pending.set_defaults(handler=show_unconfirmed)


def _read(args: argparse.Namespace, reader: Callable[[Session], T]) -> T:
    from sqlalchemy.exc import SQLAlchemyError

    from certserver.db.session import make_session_factory, transaction

    engine = service_engine(args)
    try:
        with transaction(make_session_factory(engine)) as session:
            return reader(session)
    except SQLAlchemyError as exc:
        raise CliError(f"cannot read the transactions: {exc.__class__.__name__}") from exc
    finally:
        engine.dispose()


def show_summary(args: argparse.Namespace) -> int:
    from certserver.services.reconciliation import totals_by_state

    totals = _read(args, totals_by_state)
    print(f"{'state':<22}{'transactions':>13}{'paid yen':>11}{'refunded yen':>14}")
    for row in totals:
        print(f"{row.state:<22}{row.transactions:>13}{row.paid_yen:>11}{row.refunded_yen:>14}")
    kept = sum(r.paid_yen for r in totals if r.state == "printed")
    open_yen = sum(r.paid_yen - r.refunded_yen for r in totals if r.state not in ("printed", "released_unconfirmed"))
    unsettled = sum(r.paid_yen for r in totals if r.state == "released_unconfirmed")
    print(
        f"fees kept (printed): {kept} yen; to settle (released_unconfirmed): {unsettled} yen; "
        f"paid, not refunded, still open: {open_yen} yen"
    )
    return 0


def show_unconfirmed(args: argparse.Namespace) -> int:
    from certserver.services.reconciliation import unconfirmed

    rows = _read(args, unconfirmed)
    for row in rows:
        ended = row.ended_at.isoformat(timespec="seconds") if row.ended_at else "-"
        print(
            f"{row.transaction_id} kiosk={row.kiosk_id} ended={ended} ({row.end_reason}) paid={row.paid_yen} "
            f"issued={','.join(row.certificate_numbers) or '-'}"
        )
    print(f"{len(rows)} released transaction(s) to settle")
    return 0
