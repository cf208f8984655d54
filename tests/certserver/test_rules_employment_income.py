"""給与所得 follows the 給与所得控除 table in force for the income year (所得税法 別表第五)."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from certserver.services.rules.employment_income import employment_income

# (給与収入, income year, 給与所得): published points of the tables, as municipalities'
# 給与所得 quick-reference tables and their worked examples give them.
PUBLISHED = [
    # 令和2年分–令和6年分
    (550_999, 2024, 0),
    (551_000, 2024, 1_000),
    (1_618_999, 2024, 1_068_999),
    (1_619_500, 2024, 1_069_000),
    (1_621_000, 2024, 1_070_000),
    (1_623_999, 2024, 1_072_000),
    (1_627_999, 2024, 1_074_000),
    (1_628_000, 2024, 1_076_800),  # A = 407,000; A × 2.4 + 100,000
    (5_200_000, 2024, 3_720_000),  # A = 1,300,000; A × 3.2 − 440,000 (not 3,460,000)
    (5_420_500, 2024, 3_896_000),  # worked example: A = 1,355,000
    (6_599_999, 2024, 4_836_800),  # A = 1,649,000
    (6_600_000, 2024, 4_840_000),  # × 90% − 1,100,000
    (8_500_000, 2024, 6_550_000),  # − 1,950,000
    (12_000_000, 2024, 10_050_000),
    # 令和7年分以降: the 650,000 minimum up to 1,900,000
    (650_999, 2025, 0),
    (1_030_000, 2025, 380_000),
    (1_600_000, 2025, 950_000),
    (1_899_999, 2025, 1_249_999),
    (1_900_000, 2025, 1_250_000),
    (5_200_000, 2025, 3_720_000),
    # 平成29年分–令和元年分
    (1_000_000, 2019, 350_000),
    (1_619_000, 2019, 969_000),
    (1_628_000, 2019, 976_800),
    (5_200_000, 2019, 3_620_000),
    (9_000_000, 2019, 6_900_000),
    (10_000_000, 2019, 7_800_000),
]


@pytest.mark.parametrize(("salary", "year", "income"), PUBLISHED)
def test_employment_income_matches_the_published_table(salary: int, year: int, income: int) -> None:
    assert employment_income(salary, year) == income


@given(st.integers(0, 30_000_000), st.integers(2017, 2030))
@example(1_628_001, 2025)  # below 令和7年分's steps: salary − 650,000, to the yen
def test_employment_income_never_falls_as_salary_rises_and_is_flat_in_4000_yen_steps(salary: int, year: int) -> None:
    income = employment_income(salary, year)
    assert 0 <= income <= salary
    assert employment_income(salary + 1, year) >= income
    # 別表第五 lists one amount per 4,000 yen of salary from 1,628,000 yen; from 令和7年分 the
    # minimum deduction (650,000 yen) covers salaries up to 1,900,000, where the steps begin.
    steps_from = 1_900_000 if year >= 2025 else 1_628_000
    if steps_from <= salary < 6_600_000:
        step = salary // 4_000 * 4_000
        assert employment_income(step, year) == income


def test_years_without_a_table_are_refused() -> None:
    with pytest.raises(ValueError, match="2016"):
        employment_income(5_000_000, 2016)
