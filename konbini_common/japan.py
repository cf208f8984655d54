"""Japan time and Japanese dates: the one JST, the era table (元号) and age.

Japan has kept UTC+9 without daylight saving since 1951, so JST is a fixed offset; it
needs no time-zone database on the host.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

JST = dt.timezone(dt.timedelta(hours=9), "JST")


@dataclass(frozen=True)
class Era:
    """An era (元号) from the day of accession; `digit` is its code in a signing
    certificate's birth date (jpki.md §11.3: 1 明治 ... 5 令和)."""

    name: str
    starts_on: dt.date
    digit: str


ERAS = (  # newest first
    Era("令和", dt.date(2019, 5, 1), "5"),
    Era("平成", dt.date(1989, 1, 8), "4"),
    Era("昭和", dt.date(1926, 12, 25), "3"),
    Era("大正", dt.date(1912, 7, 30), "2"),
    Era("明治", dt.date(1868, 1, 25), "1"),  # 明治元年 counts from the start of 1868 (慶応4年)
)


def age_on(birth_date: dt.date, day: dt.date) -> int:
    """Full years of age on `day`, counted from the calendar birthday. (The law counts a
    year as complete at the end of the day before the birthday; that one day is ignored.)"""
    years = day.year - birth_date.year
    if (day.month, day.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years
