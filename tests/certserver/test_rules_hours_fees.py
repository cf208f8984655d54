"""When the service is open, what it costs, and how many copies (service.md §3, §7), all in
Japan time, on the demo registry, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from registry_support import BUILT_ON, demo_database, demo_session  # noqa: F401 (fixtures: `session`)
from sqlalchemy.orm import Session

from certserver.db.models.registry import CertificateSetting, Closure, Fee, Municipality
from certserver.demo.my_number import check_digit, is_valid, with_check_digit
from certserver.demo.world import TORIDE, TSUKUBA
from certserver.documents.content import CertificateKind
from certserver.services.ordering import (
    MunicipalityRole,
    OrderRequest,
    PreparedOrder,
    RuleViolation,
    menu_for,
    prepare_order,
)
from certserver.services.rules.calendar import (
    JST,
    add_business_days,
    is_year_end_closure,
    latest_fiscal_year,
)

KENICHI, SUZUKI = "toride-0001", "toride-0010"
K = CertificateKind


def jst(y: int, m: int, d: int, hh: int = 12, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=JST)


FRIDAY_NOON = jst(2026, 11, 27)


def order(
    session: Session,
    now: datetime,
    kind: CertificateKind = K.JUMINHYO,
    *,
    requester: str = KENICHI,
    municipality: str = TORIDE,
    role: MunicipalityRole = MunicipalityRole.JUSHOCHI,
    copies: int = 1,
) -> PreparedOrder:
    return prepare_order(session, requester, OrderRequest(municipality, role, kind, copies=copies), now)


def refusal(session: Session, now: datetime, kind: CertificateKind = K.JUMINHYO, **kw: object) -> str:
    with pytest.raises(RuleViolation) as caught:
        order(session, now, kind, **kw)  # type: ignore[arg-type]
    return caught.value.code


# -- pure calendar rules -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "closed"),
    [
        (date(2026, 12, 28), False),
        (date(2026, 12, 29), True),
        (date(2026, 12, 31), True),
        (date(2027, 1, 1), True),
        (date(2027, 1, 3), True),
        (date(2027, 1, 4), False),
    ],
)
def test_year_end_closure_runs_from_29_december_to_3_january(day: date, closed: bool) -> None:
    assert is_year_end_closure(day) is closed


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)))
def test_latest_fiscal_year_is_this_year_from_june(day: date) -> None:
    assert latest_fiscal_year(day) == (day.year if day >= date(day.year, 6, 1) else day.year - 1)


def test_business_days_skip_weekends_and_the_year_end() -> None:
    assert add_business_days(date(2026, 11, 26), 3) == date(2026, 12, 1)  # Thu -> Tue
    assert add_business_days(date(2026, 12, 28), 1) == date(2027, 1, 4)


# -- My Number check digits -----------------------------------------------------------------


def test_my_number_check_digit_matches_the_published_example() -> None:
    assert check_digit("12345678901") == 8
    assert is_valid("123456789018") and not is_valid("123456789019")


@given(st.text(alphabet="0123456789", min_size=11, max_size=11))
def test_exactly_one_check_digit_completes_each_number(first: str) -> None:
    valid = [d for d in "0123456789" if is_valid(first + d)]
    assert valid == [str(check_digit(first))] and with_check_digit(first) == first + valid[0]


@pytest.mark.parametrize("bad", ["12345678901", "1234567890188", "12345678901a", "１２３４５６７８９０１８"])
def test_malformed_my_numbers_are_invalid(bad: str) -> None:
    assert not is_valid(bad)


# -- hours ---------------------------------------------------------------------------------


def test_hours_are_0630_to_2300_jst(session: Session) -> None:
    assert refusal(session, jst(2026, 11, 27, 6, 29)) == "outside_hours"
    assert order(session, jst(2026, 11, 27, 6, 30)).copies == 1
    assert order(session, jst(2026, 11, 27, 22, 59)).copies == 1
    assert refusal(session, jst(2026, 11, 27, 23, 0)) == "outside_hours"


def test_hours_are_judged_in_japan_time_whatever_the_callers_zone(session: Session) -> None:
    # 21:00 UTC is 06:00 JST next day: closed, although noon-ish in Europe.
    assert refusal(session, datetime(2026, 11, 26, 21, 0, tzinfo=UTC)) == "outside_hours"
    assert order(session, datetime(2026, 11, 26, 21, 30, tzinfo=UTC)).content.issued_on == date(2026, 11, 27)


def test_a_naive_time_is_rejected(session: Session) -> None:
    with pytest.raises(ValueError):
        order(session, datetime(2026, 11, 27, 12, 0))


def test_koseki_hours_can_be_weekdays_only(session: Session) -> None:
    tsukuba = {"municipality": TSUKUBA, "role": MunicipalityRole.HONSEKICHI}
    assert order(session, jst(2026, 11, 27, 8, 30), K.KOSEKI_ZENBU, **tsukuba).copies == 1  # type: ignore[arg-type]
    assert refusal(session, jst(2026, 11, 27, 8, 29), K.KOSEKI_ZENBU, **tsukuba) == "outside_hours"
    assert refusal(session, jst(2026, 11, 27, 17, 0), K.KOSEKI_ZENBU, **tsukuba) == "outside_hours"
    assert refusal(session, jst(2026, 11, 28, 12, 0), K.KOSEKI_ZENBU, **tsukuba) == "outside_hours"  # Saturday


def test_menu_marks_offers_outside_their_hours(session: Session) -> None:
    saturday = menu_for(session, KENICHI, jst(2026, 11, 28, 12, 0))
    toride, tsukuba = saturday.municipalities
    assert toride.open and all(o.available for o in toride.offers)
    assert not tsukuba.open and tsukuba.closed_reason == "outside_hours"
    assert {o.unavailable_reason for o in tsukuba.offers} == {"outside_hours"}
    early = menu_for(session, KENICHI, jst(2026, 11, 27, 5, 0)).municipalities[0]
    assert (early.open, early.closed_reason) == (False, "outside_hours")


# -- closures and the stop switch -----------------------------------------------------------


def test_year_end_closure_applies_to_orders_and_the_menu(session: Session) -> None:
    assert refusal(session, jst(2026, 12, 29)) == "year_end_closure"
    assert refusal(session, jst(2027, 1, 3)) == "year_end_closure"
    assert order(session, jst(2027, 1, 4)).copies == 1
    menu = menu_for(session, KENICHI, jst(2026, 12, 30)).municipalities[0]
    assert (menu.open, menu.closed_reason) == (False, "year_end_closure")


def test_maintenance_days_close_one_municipality_or_all(session: Session) -> None:
    session.add(Closure(municipality_code=TSUKUBA, closed_on=date(2026, 12, 2), reason="保守"))
    session.add(Closure(municipality_code=None, closed_on=date(2026, 12, 3), reason="全国保守"))
    session.flush()
    tsukuba = {"municipality": TSUKUBA, "role": MunicipalityRole.HONSEKICHI}
    assert order(session, jst(2026, 12, 2)).copies == 1  # 取手市 is open
    assert refusal(session, jst(2026, 12, 2), K.KOSEKI_ZENBU, **tsukuba) == "maintenance_day"
    assert refusal(session, jst(2026, 12, 3)) == "maintenance_day"
    assert refusal(session, jst(2026, 12, 3), K.KOSEKI_ZENBU, **tsukuba) == "maintenance_day"


def test_the_stop_switch_halts_one_municipality(session: Session) -> None:
    toride = session.get(Municipality, TORIDE)
    assert toride is not None
    toride.stopped, toride.stop_reason = True, "異常検知のため停止"
    session.flush()
    assert refusal(session, FRIDAY_NOON) == "municipality_stopped"
    menu = menu_for(session, KENICHI, FRIDAY_NOON)
    toride_menu, tsukuba_menu = menu.municipalities
    assert (toride_menu.open, toride_menu.closed_reason) == (False, "municipality_stopped")
    assert all(o.unavailable_reason == "municipality_stopped" for o in toride_menu.offers)
    assert tsukuba_menu.open  # the 本籍地 is not affected


def test_a_municipality_issues_only_while_participating(session: Session) -> None:
    toride = session.get(Municipality, TORIDE)
    assert toride is not None
    assert refusal(session, jst(2016, 6, 30)) == "municipality_not_participating"  # started 2016-07-01
    toride.participating = False
    session.flush()
    assert refusal(session, FRIDAY_NOON) == "municipality_not_participating"


def test_a_certificate_not_offered_is_refused(session: Session) -> None:
    setting = session.get(CertificateSetting, (TORIDE, K.KISAIJIKO.value))
    assert setting is not None
    setting.offered = False
    session.flush()
    assert refusal(session, FRIDAY_NOON, K.KISAIJIKO) == "certificate_not_offered"
    kinds = [o.kind for o in menu_for(session, KENICHI, FRIDAY_NOON).municipalities[0].offers]
    assert K.KISAIJIKO not in kinds


# -- fees and copies ------------------------------------------------------------------------


def test_fee_comes_from_the_dated_table_of_the_jst_date(session: Session) -> None:
    session.add(
        Fee(
            municipality_code=TORIDE,
            kind=K.JUMINHYO.value,
            fee_yen=120,
            valid_from=date(2027, 4, 1),
            valid_to=date(2027, 4, 30),
            label="demo value (temporary discount)",
        )
    )
    session.flush()
    assert order(session, jst(2027, 3, 31, 22, 0)).fee_per_copy_yen == 200
    # 21:30 UTC on 31 March is 06:30 JST on 1 April: the April fee.
    assert order(session, datetime(2027, 3, 31, 21, 30, tzinfo=UTC)).fee_per_copy_yen == 120
    assert order(session, jst(2027, 4, 30, 22, 0)).fee_per_copy_yen == 120
    assert order(session, jst(2027, 5, 1, 12, 0)).fee_per_copy_yen == 200


def test_the_past_discount_in_the_demo_table_applied_only_in_its_period(session: Session) -> None:
    assert order(session, jst(2023, 10, 2)).fee_per_copy_yen == 100
    assert order(session, jst(2024, 4, 1)).fee_per_copy_yen == 200


def test_no_fee_row_means_no_issuance(session: Session) -> None:
    session.query(Fee).filter_by(municipality_code=TORIDE, kind=K.INKAN.value).delete()
    session.flush()
    assert refusal(session, FRIDAY_NOON, K.INKAN) == "no_fee_defined"
    offer = next(o for o in menu_for(session, KENICHI, FRIDAY_NOON).municipalities[0].offers if o.kind is K.INKAN)
    assert (offer.available, offer.unavailable_reason) == (False, "no_fee_defined")


def test_copies_are_between_one_and_the_municipalitys_maximum(session: Session) -> None:
    prepared = order(session, FRIDAY_NOON, copies=10)
    assert (prepared.copies, prepared.total_fee_yen) == (10, 2000)
    assert refusal(session, FRIDAY_NOON, copies=11) == "too_many_copies"
    assert refusal(session, FRIDAY_NOON, copies=0) == "invalid_copies"
    setting = session.get(CertificateSetting, (TORIDE, K.JUMINHYO.value))
    assert setting is not None
    setting.max_copies = 3
    session.flush()
    assert refusal(session, FRIDAY_NOON, copies=4) == "too_many_copies"
    offer = menu_for(session, KENICHI, FRIDAY_NOON).municipalities[0].offers[0]
    assert offer.max_copies == 3


def test_settings_hours_are_data_not_code(session: Session) -> None:
    setting = session.get(CertificateSetting, (TORIDE, K.INKAN.value))
    assert setting is not None
    setting.opens_at, setting.closes_at, setting.weekdays_only = time(9, 0), time(17, 0), True
    session.flush()
    assert refusal(session, jst(2026, 11, 27, 8, 59), K.INKAN) == "outside_hours"
    assert refusal(session, jst(2026, 11, 28, 12, 0), K.INKAN) == "outside_hours"
    assert order(session, jst(2026, 11, 27, 8, 59)).copies == 1  # 住民票 keeps its own hours


# -- when demos, benches and tests run the service: the calendar's own answer ----------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (jst(2026, 11, 26, 12, 0), jst(2026, 11, 26, 12, 0)),  # a Thursday noon: now
        (jst(2026, 11, 26, 8, 0), jst(2026, 11, 26, 10, 0)),  # before 10:00: the same day
        (jst(2026, 11, 26, 16, 0), jst(2026, 11, 27, 10, 0)),  # after 16:00: the next weekday
        (jst(2026, 11, 28, 12, 0), jst(2026, 11, 30, 10, 0)),  # a Saturday: Monday
        (jst(2026, 12, 28, 17, 0), jst(2027, 1, 4, 10, 0)),  # year-end closure: 4 January
        (jst(2027, 1, 2, 12, 0), jst(2027, 1, 4, 10, 0)),  # inside the closure on a weekend
        (jst(2026, 12, 29, 12, 0), jst(2027, 1, 4, 10, 0)),  # a Tuesday, but closed
    ],
)
def test_the_next_moment_every_certificate_is_on_offer(now: datetime, expected: datetime) -> None:
    """The demo script, the benches and the kiosk tests shift the service's clock to this
    moment; it is never in the year-end closure, on a weekend or outside 10:00-16:00 JST."""
    from certserver.services.rules.calendar import is_surely_open, next_surely_open

    assert next_surely_open(now) == expected
    assert is_surely_open(expected)
    assert next_surely_open(now.astimezone(UTC)) == expected  # the zone it is given in does not matter
