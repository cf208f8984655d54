"""和暦 (Japanese era dates) as printed on certificates: 令和8年11月26日, 平成元年1月8日.

An era starts on the day of accession, so 1989-01-07 is 昭和64年 and 1989-01-08 平成元年;
each date is written in the era it falls in (a birth date in 昭和 stays 昭和). Dates before
1873-01-01 (明治6年, when Japan adopted the Gregorian calendar) are refused: earlier dates
were lunisolar and cannot be converted day by day.
"""

from __future__ import annotations

import re
from datetime import date

from konbini_common.japan import ERAS, Era


class WarekiRangeError(ValueError):
    """The date is before the Gregorian calendar was used in Japan (1873-01-01)."""


GREGORIAN_FROM = date(1873, 1, 1)
_MEIJI_YEAR_ONE = 1868


def era_of(day: date) -> tuple[Era, int]:
    """The era and the era year (1 = 元年) of `day`. Raises WarekiRangeError before 1873."""
    if day < GREGORIAN_FROM:
        raise WarekiRangeError(f"{day.isoformat()} is before 1873-01-01; no 和暦 conversion")
    for era in ERAS:
        if day >= era.starts_on:
            first_year = _MEIJI_YEAR_ONE if era.name == "明治" else era.starts_on.year
            return era, day.year - first_year + 1
    raise AssertionError("unreachable: 明治 covers every date from 1873")


def _year_text(year: int) -> str:
    return "元" if year == 1 else str(year)


def to_wareki(day: date) -> str:
    """`day` as 令和8年11月26日 (元年 for the first year). Raises WarekiRangeError before 1873."""
    era, year = era_of(day)
    return f"{era.name}{_year_text(year)}年{day.month}月{day.day}日"


def fiscal_year_wareki(year: int) -> str:
    """A fiscal year (年度, 1 April to 31 March) as 令和8年度.

    Named by the era in effect on 1 May: FY2019 is 令和元年度 (令和 began on 1 May 2019, and
    municipalities renamed that year), while FY1988 stayed 昭和63年度 although 平成 began in
    its January. Raises WarekiRangeError before 1873.
    """
    era, era_year = era_of(date(year, 5, 1))
    return f"{era.name}{_year_text(era_year)}年度"


def calendar_year_wareki(year: int) -> str:
    """A calendar year by the era of its last day, as income years are named (令和7年分)."""
    era, era_year = era_of(date(year, 12, 31))
    return f"{era.name}{_year_text(era_year)}年"


_PATTERN = re.compile(r"^(明治|大正|昭和|平成|令和)(元|\d+)年(\d+)月(\d+)日$")


def parse_wareki(text: str) -> date:
    """The date written as 令和8年11月26日. Raises ValueError if it is not a valid 和暦 date
    (including a date outside its era, such as 平成31年5月1日)."""
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(f"not a 和暦 date: {text!r}")
    era_name, year_text, month, day = match.groups()
    era = next(e for e in ERAS if e.name == era_name)
    era_year = 1 if year_text == "元" else int(year_text)
    first_year = _MEIJI_YEAR_ONE if era_name == "明治" else era.starts_on.year
    result = date(first_year + era_year - 1, int(month), int(day))
    if era_of(result) != (era, era_year):
        raise ValueError(f"{text!r} is outside the {era_name} era")
    return result
