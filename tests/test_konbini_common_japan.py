"""Japan time and dates, written once (konbini_common.japan) and used by the certificate
profiles, the 和暦 printer, the eligibility rules and the calendar alike."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from certserver.documents import wareki
from certserver.pki import profiles
from certserver.services.rules import calendar
from konbini_common.japan import ERAS, JST, age_on


def test_every_part_of_the_service_reads_the_same_japan_time() -> None:
    assert calendar.JST is JST
    moment = dt.datetime(2026, 12, 28, 15, 0, tzinfo=dt.UTC)
    assert moment.astimezone(JST).date() == dt.date(2026, 12, 29)  # midnight JST, not UTC


@given(st.dates(min_value=dt.date(1873, 1, 1), max_value=dt.date(2100, 12, 31)))
def test_the_certificate_era_digit_and_the_printed_era_agree(day: dt.date) -> None:
    """The signing certificate's era digit (jpki.md §11.3) names the era 和暦 prints."""
    digit = profiles.era_birth_date(day)[0]
    era, _ = wareki.era_of(day)
    assert {e.digit: e.name for e in ERAS}[digit] == era.name


def test_age_counts_full_years_from_the_calendar_birthday() -> None:
    assert age_on(dt.date(2011, 11, 27), dt.date(2026, 11, 26)) == 14
    assert age_on(dt.date(2011, 11, 27), dt.date(2026, 11, 27)) == 15
    assert age_on(dt.date(2008, 2, 29), dt.date(2026, 2, 28)) == 17
