"""和暦 dates as certificates print them."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certserver.documents.wareki import (
    WarekiRangeError,
    calendar_year_wareki,
    fiscal_year_wareki,
    parse_wareki,
    to_wareki,
)


@pytest.mark.parametrize(
    ("day", "text"),
    [
        (date(2026, 11, 26), "令和8年11月26日"),
        (date(2019, 5, 1), "令和元年5月1日"),
        (date(2019, 4, 30), "平成31年4月30日"),
        (date(1989, 1, 8), "平成元年1月8日"),
        (date(1989, 1, 7), "昭和64年1月7日"),
        (date(1926, 12, 25), "昭和元年12月25日"),
        (date(1926, 12, 24), "大正15年12月24日"),
        (date(1912, 7, 30), "大正元年7月30日"),
        (date(1912, 7, 29), "明治45年7月29日"),
        (date(1873, 1, 1), "明治6年1月1日"),
    ],
)
def test_dates_are_written_in_the_era_they_fall_in(day: date, text: str) -> None:
    assert to_wareki(day) == text
    assert parse_wareki(text) == day


def test_dates_before_the_gregorian_calendar_are_refused() -> None:
    with pytest.raises(WarekiRangeError):
        to_wareki(date(1872, 12, 31))


def test_fiscal_and_income_years_use_the_era_of_their_period() -> None:
    assert fiscal_year_wareki(2026) == "令和8年度"
    assert fiscal_year_wareki(2019) == "令和元年度"  # began in 平成31年, named by the new era
    assert fiscal_year_wareki(1988) == "昭和63年度"
    assert fiscal_year_wareki(2020) == "令和2年度"
    assert calendar_year_wareki(2025) == "令和7年"
    assert calendar_year_wareki(1989) == "平成元年"


def test_a_date_outside_its_era_does_not_parse() -> None:
    with pytest.raises(ValueError):
        parse_wareki("平成31年5月1日")  # that day is 令和元年5月1日
    with pytest.raises(ValueError):
        parse_wareki("令和0年1月1日")
    with pytest.raises(ValueError):
        parse_wareki("2026年11月26日")


@given(st.dates(min_value=date(1873, 1, 1), max_value=date(2200, 12, 31)))
def test_every_date_round_trips(day: date) -> None:
    assert parse_wareki(to_wareki(day)) == day


@given(st.dates(min_value=date(1873, 1, 1), max_value=date(2200, 12, 30)))
def test_consecutive_days_never_go_back_in_era_order(day: date) -> None:
    order = ["明治", "大正", "昭和", "平成", "令和"]
    today, tomorrow = to_wareki(day), to_wareki(day + timedelta(days=1))
    assert order.index(tomorrow[:2]) >= order.index(today[:2])
