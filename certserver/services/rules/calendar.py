"""Time rules of the service, all in Japan time (JST): business hours per certificate kind,
the year-end closure, maintenance days, and the fiscal year a tax certificate is for."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from konbini_common.japan import JST


def to_jst(now: datetime) -> datetime:
    """`now` in JST. Raises ValueError for a naive datetime (its zone would be a guess)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    return now.astimezone(JST)


def is_year_end_closure(day: date) -> bool:
    """29 December to 3 January: closed everywhere (service.md §3)."""
    return (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3)


def is_weekday(day: date) -> bool:
    # National holidays are not modelled: a municipality closes them with maintenance days.
    return day.weekday() < 5


def latest_fiscal_year(day: date) -> int:
    """The newest 年度 a tax certificate exists for: from 1 June of year Y it is Y, before
    that Y-1 (the new year's tax is assessed in June)."""
    return day.year if day.month >= 6 else day.year - 1


def add_business_days(day: date, count: int) -> date:
    """`count` weekdays after `day` (used for 本籍地 利用登録 taking effect)."""
    result = day
    while count > 0:
        result += timedelta(days=1)
        if is_weekday(result) and not is_year_end_closure(result):
            count -= 1
    return result


# Inside every certificate's hours under every setting the demo and the tests use (戸籍 at
# many cities keeps weekday office hours): the time demos, benches and tests run the service
# at when the real time is outside them.
SURELY_OPEN_FROM = time(10, 0)
SURELY_OPEN_UNTIL = time(16, 0)


def is_surely_open(now: datetime) -> bool:
    """A weekday outside the year-end closure, 10:00-16:00 JST. Raises ValueError for a
    naive datetime."""
    local = to_jst(now)
    day = local.date()
    return (
        is_weekday(day)
        and not is_year_end_closure(day)
        and SURELY_OPEN_FROM <= local.time().replace(tzinfo=None) < SURELY_OPEN_UNTIL
    )


def next_surely_open(after: datetime) -> datetime:
    """`after` itself if is_surely_open, else 10:00 JST of the next moment that is (the same
    day before 10:00). Raises ValueError for a naive datetime."""
    if is_surely_open(after):
        return after
    local = to_jst(after)
    day = local.date()
    if local.time().replace(tzinfo=None) >= SURELY_OPEN_FROM:
        day += timedelta(days=1)
    while not is_weekday(day) or is_year_end_closure(day):
        day += timedelta(days=1)
    return datetime.combine(day, SURELY_OPEN_FROM, JST)
