"""給与所得: 給与収入 less the 給与所得控除 of the year the salary was earned.

The figure a 所得・課税証明書 prints is not a formula on the salary: below 6,600,000 yen the
law fixes it by the table of 所得税法 別表第五, in steps of 4,000 yen of salary, which is
what municipalities compute with "divide by 4, drop the thousands (A), then A × rate − c".
Above that the deduction is a percentage with a ceiling. Each income year uses the table in
force for it:

- 平成29年分–令和元年分: minimum deduction 650,000, ceiling 2,200,000 above 10,000,000;
- 令和2年分–令和6年分: minimum 550,000, ceiling 1,950,000 above 8,500,000;
- 令和7年分以降: minimum raised to 650,000 (up to 1,900,000 of salary), the rest unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

FIRST_TABLE_YEAR = 2017  # 平成29年分: the oldest table kept here


@dataclass(frozen=True)
class _Band:
    """Salaries from `low` (inclusive): 給与所得 = A × `times` − `minus`, where A is the
    salary divided by 4 and cut to the thousand (別表第五's 4,000-yen steps)."""

    low: int
    times: float
    minus: int


@dataclass(frozen=True)
class _Table:
    minimum: int  # the minimum deduction: 給与所得 is salary − minimum below the bands
    fixed: tuple[tuple[int, int], ...]  # (from salary, 給与所得) steps where 別表第五 lists amounts
    bands: tuple[_Band, ...]  # 別表第五 bands, up to `table_end`
    table_end: int  # from here: salary × 90% − `rate_minus`, capped at `cap_from`
    rate_minus: int
    cap_from: int  # from here: salary − the maximum deduction
    maximum: int


_HEISEI29 = _Table(
    minimum=650_000,
    fixed=((1_619_000, 969_000), (1_620_000, 970_000), (1_622_000, 972_000), (1_624_000, 974_000)),
    bands=(
        _Band(1_628_000, 2.4, 0),
        _Band(1_800_000, 2.8, 180_000),
        _Band(3_600_000, 3.2, 540_000),
    ),
    table_end=6_600_000,
    rate_minus=1_200_000,
    cap_from=10_000_000,
    maximum=2_200_000,
)
_REIWA2 = _Table(
    minimum=550_000,
    fixed=(
        (1_619_000, 1_069_000),
        (1_620_000, 1_070_000),
        (1_622_000, 1_072_000),
        (1_624_000, 1_074_000),
    ),
    bands=(
        _Band(1_628_000, 2.4, -100_000),
        _Band(1_800_000, 2.8, 80_000),
        _Band(3_600_000, 3.2, 440_000),
    ),
    table_end=6_600_000,
    rate_minus=1_100_000,
    cap_from=8_500_000,
    maximum=1_950_000,
)
# 令和7年度税制改正: the 650,000 minimum reaches up to 1,900,000 of salary, where the
# 30% + 80,000 deduction takes over; the steps around 1,620,000 no longer apply.
_REIWA7 = _Table(
    minimum=650_000,
    fixed=(),
    bands=(_Band(1_900_000, 2.8, 80_000), _Band(3_600_000, 3.2, 440_000)),
    table_end=6_600_000,
    rate_minus=1_100_000,
    cap_from=8_500_000,
    maximum=1_950_000,
)


def _table_for(income_year: int) -> _Table:
    if income_year < FIRST_TABLE_YEAR:
        raise ValueError(f"no 給与所得控除 table kept for income year {income_year}")
    if income_year <= 2019:
        return _HEISEI29
    return _REIWA2 if income_year <= 2024 else _REIWA7


def employment_income(salary: int, income_year: int) -> int:
    """給与所得 for `salary` yen of 給与収入 earned in `income_year` (Gregorian).

    Raises ValueError for a negative salary or a year before 平成29年分 (2017)."""
    if salary < 0:
        raise ValueError("salary cannot be negative")
    table = _table_for(income_year)
    if salary >= table.cap_from:
        return salary - table.maximum
    if salary >= table.table_end:
        return salary * 9 // 10 - table.rate_minus
    for band in reversed(table.bands):
        if salary >= band.low:
            a = salary // 4 // 1000 * 1000
            return round(a * band.times) - band.minus
    for low, amount in reversed(table.fixed):
        if salary >= low:
            return amount
    # The table starts at minimum + 1,000: below it (551,000 or 651,000) there is none.
    return salary - table.minimum if salary >= table.minimum + 1_000 else 0
