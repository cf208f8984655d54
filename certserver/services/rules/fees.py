"""The dated fee table: the fee per copy in force on a JST date."""

from __future__ import annotations

from datetime import date

from certserver.db.repositories.registry import RegistryRepository
from certserver.services.rules.violations import violation


def fee_for(repo: RegistryRepository, municipality_code: str, kind: str, day: date) -> int:
    """The fee per copy (yen) on `day`. Where rows overlap (a temporary discount laid over
    an open-ended fee) the row that started last wins.

    Raises RuleViolation("no_fee_defined") when no row covers `day`."""
    rows = repo.fees_on(municipality_code, kind, day)
    if not rows:
        raise violation("no_fee_defined")
    return rows[0].fee_yen
