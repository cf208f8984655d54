"""Small builders for registry rows with the service's defaults, used by the demo data and
by tests that need a municipality or a fee table without repeating every column."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, time

from sqlalchemy.orm import Session

from certserver.db.models.registry import (
    DEFAULT_CLOSES_AT,
    DEFAULT_MAX_COPIES,
    DEFAULT_OPENS_AT,
    CertificateSetting,
    Fee,
    Municipality,
)
from certserver.documents.content import CertificateKind

KOSEKI_KINDS = frozenset({CertificateKind.KOSEKI_ZENBU, CertificateKind.KOSEKI_KOJIN, CertificateKind.KOSEKI_FUHYO})
# A common arrangement (service.md §3): 戸籍 certificates on weekdays 08:30–17:00 only.
KOSEKI_WEEKDAY_HOURS = (time(8, 30), time(17, 0), True)


def add_municipality(
    session: Session,
    *,
    code: str,
    name: str,
    name_en: str,
    prefecture: str,
    mayor_name: str,
    participation_start: date | None,
    participating: bool = True,
    allows_my_number_on_juminhyo: bool = False,
    kinds: Iterable[CertificateKind] = tuple(CertificateKind),
    koseki_hours: tuple[time, time, bool] = (DEFAULT_OPENS_AT, DEFAULT_CLOSES_AT, False),
    max_copies: int = DEFAULT_MAX_COPIES,
) -> Municipality:
    """A municipality offering `kinds` 06:30–23:00 daily, 戸籍 kinds in `koseki_hours`
    (opens, closes, weekdays only)."""
    municipality = Municipality(
        code=code,
        name=name,
        name_en=name_en,
        prefecture=prefecture,
        mayor_title=f"{name}長",
        mayor_name=mayor_name,
        participating=participating,
        participation_start=participation_start,
        stopped=False,
        stop_reason=None,
        allows_my_number_on_juminhyo=allows_my_number_on_juminhyo,
    )
    session.add(municipality)
    session.flush()  # rows below refer to it without an ORM relationship to order them
    for kind in kinds:
        opens, closes, weekdays_only = (
            koseki_hours if kind in KOSEKI_KINDS else (DEFAULT_OPENS_AT, DEFAULT_CLOSES_AT, False)
        )
        session.add(
            CertificateSetting(
                municipality_code=code,
                kind=kind.value,
                offered=True,
                opens_at=opens,
                closes_at=closes,
                weekdays_only=weekdays_only,
                max_copies=max_copies,
            )
        )
    return municipality


def add_fees(
    session: Session,
    municipality_code: str,
    fees: Mapping[CertificateKind, int],
    *,
    valid_from: date,
    valid_to: date | None = None,
    label: str = "demo value",
) -> list[Fee]:
    """One fee row per kind for the period `valid_from`..`valid_to` (inclusive)."""
    rows = [
        Fee(
            municipality_code=municipality_code,
            kind=kind.value,
            fee_yen=yen,
            valid_from=valid_from,
            valid_to=valid_to,
            label=label,
        )
        for kind, yen in fees.items()
    ]
    session.add_all(rows)
    return rows
