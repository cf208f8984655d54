"""Who may be named on which certificate, with which items (service.md §2), on the demo
registry, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from registry_support import BUILT_ON, demo_database, demo_session  # noqa: F401 (fixtures: `session`)
from sqlalchemy.orm import Session

from certserver.db.models.registry import (
    Koseki,
    KosekiMember,
    Municipality,
    Resident,
    SealRegistration,
)
from certserver.demo.world import TORIDE, TSUKUBA
from certserver.documents.content import (
    CertificateKind,
    FuhyoContent,
    InkanContent,
    JuminhyoContent,
    KosekiContent,
    TaxContent,
)
from certserver.services.ordering import (
    MunicipalityRole,
    OrderRequest,
    PreparedOrder,
    RuleViolation,
    menu_for,
    prepare_order,
)
from certserver.services.rules.calendar import JST

NOON = datetime(2026, 11, 27, 12, 0, tzinfo=JST)  # the next day, a Friday

KENICHI, MISAKI, SHOTA, YUI, MASAO = "toride-0001", "toride-0002", "toride-0003", "toride-0004", "toride-0005"
SUZUKI, NGUYEN, TAKAHASHI, TANAKA, ITO, WATANABE, YOSHIDA, KOBAYASHI = (
    "toride-0010",
    "toride-0020",
    "toride-0030",
    "toride-0040",
    "toride-0050",
    "toride-0060",
    "toride-0070",
    "toride-0080",
)
J = MunicipalityRole.JUSHOCHI
H = MunicipalityRole.HONSEKICHI
K = CertificateKind


def order(
    session: Session,
    requester: str,
    kind: CertificateKind,
    *,
    municipality: str = TORIDE,
    role: MunicipalityRole = J,
    now: datetime = NOON,
    **fields: object,
) -> PreparedOrder:
    return prepare_order(session, requester, OrderRequest(municipality, role, kind, **fields), now)  # type: ignore[arg-type]


def refusal(session: Session, requester: str, kind: CertificateKind, **fields: object) -> str:
    with pytest.raises(RuleViolation) as caught:
        order(session, requester, kind, **fields)  # type: ignore[arg-type]
    assert caught.value.message_ja and caught.value.message_en
    return caught.value.code


def set_status(session: Session, resident_id: str, status: str) -> None:
    resident = session.get(Resident, resident_id)
    assert resident is not None
    resident.status = status
    session.flush()


# -- 住民票の写し ---------------------------------------------------------------------------


def test_juminhyo_defaults_to_the_requester_alone(session: Session) -> None:
    prepared = order(session, KENICHI, K.JUMINHYO)
    assert prepared.content.subject_names() == ("佐藤　健一",)
    assert prepared.content.issuer.code == TORIDE and prepared.content.certificate_number == ""
    assert prepared.content.issued_on == date(2026, 11, 27)
    assert prepared.fee_per_copy_yen == 200


def test_juminhyo_names_chosen_household_members_in_household_order(session: Session) -> None:
    prepared = order(session, MISAKI, K.JUMINHYO, person_ids=(YUI, KENICHI))
    assert prepared.content.subject_names() == ("佐藤　健一", "佐藤　結衣")


def test_whole_household_is_the_current_members_without_the_deceased(session: Session) -> None:
    body = order(session, SHOTA, K.JUMINHYO, whole_household=True).content.body
    assert isinstance(body, JuminhyoContent) and body.whole_household
    assert [p.name for p in body.persons] == ["佐藤　健一", "佐藤　美咲", "佐藤　翔太", "佐藤　結衣"]


def test_a_deceased_household_member_cannot_be_named(session: Session) -> None:
    assert refusal(session, KENICHI, K.JUMINHYO, person_ids=(MASAO,)) == "person_not_allowed"


def test_a_person_of_another_household_cannot_be_named(session: Session) -> None:
    assert refusal(session, KENICHI, K.JUMINHYO, person_ids=(KENICHI, SUZUKI)) == "person_not_allowed"
    assert refusal(session, SUZUKI, K.KISAIJIKO, person_ids=(KENICHI,)) == "person_not_allowed"


def test_optional_items_are_printed_only_when_asked(session: Session) -> None:
    plain = order(session, KENICHI, K.JUMINHYO).content.body
    assert isinstance(plain, JuminhyoContent)
    person = plain.persons[0]
    assert (plain.setainushi, person.relationship, person.honseki, person.hitto_sha, person.my_number) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert plain.omitted_items == ("世帯主・続柄", "本籍・筆頭者", "個人番号", "住民票コード")
    full = order(
        session, KENICHI, K.JUMINHYO, person_ids=(MISAKI,), options=frozenset({"setainushi", "honseki", "my_number"})
    ).content.body
    assert isinstance(full, JuminhyoContent)
    misaki = session.get(Resident, MISAKI)
    assert misaki is not None
    line = full.persons[0]
    assert full.setainushi == "佐藤　健一" and line.relationship == "妻"
    assert (line.honseki, line.hitto_sha) == ("茨城県つくば市北条百二十三番地", "佐藤　健一")
    assert line.my_number == misaki.my_number
    assert full.omitted_items == ("住民票コード",)


def test_juminhyo_code_is_never_in_any_certificate(session: Session) -> None:
    orders = [
        order(
            session,
            KENICHI,
            K.JUMINHYO,
            whole_household=True,
            options=frozenset({"setainushi", "honseki", "my_number"}),
        ),
        order(session, KENICHI, K.KISAIJIKO, whole_household=True),
        order(session, KENICHI, K.INKAN),
        order(session, NGUYEN, K.JUMINHYO, options=frozenset({"foreign_items", "my_number"})),
    ]
    codes = [r.juminhyo_code for r in session.query(Resident).all()]
    assert all(codes)
    for prepared in orders:
        text = prepared.content.canonical_json().decode()
        assert not any(code in text for code in codes)


def test_my_number_only_where_the_municipality_allows_it(session: Session) -> None:
    toride = session.get(Municipality, TORIDE)
    assert toride is not None
    toride.allows_my_number_on_juminhyo = False
    session.flush()
    assert refusal(session, KENICHI, K.JUMINHYO, options=frozenset({"my_number"})) == "my_number_not_allowed"
    offer = next(o for o in menu_for(session, KENICHI, NOON).municipalities[0].offers if o.kind is K.JUMINHYO)
    assert "my_number" not in {o.code for o in offer.options}


def test_foreign_resident_items_for_a_foreign_resident(session: Session) -> None:
    body = order(session, NGUYEN, K.JUMINHYO, options=frozenset({"foreign_items"})).content.body
    assert isinstance(body, JuminhyoContent)
    foreign = body.persons[0].foreign
    assert foreign is not None
    assert (foreign.nationality, foreign.residence_card_number, foreign.residence_status) == (
        "ベトナム",
        "AB12345678CD",
        "技術・人文知識・国際業務",
    )
    assert body.persons[0].honseki is None


def test_a_foreign_residents_juminhyo_carries_the_tsusho_the_category_and_western_dates(
    session: Session,
) -> None:
    """The 通称 is part of the name (printed even without the foreign items), the 第30条の45
    区分 comes with the foreign items, and the dates are to be printed in the Western calendar."""
    body = order(session, NGUYEN, K.JUMINHYO, options=frozenset({"foreign_items"})).content.body
    assert isinstance(body, JuminhyoContent)
    person = body.persons[0]
    assert person.foreign is not None and person.foreign.category == "中長期在留者"
    assert (person.tsusho, person.western_dates) == ("阮　文安", True)
    plain = order(session, NGUYEN, K.JUMINHYO).content.body
    assert isinstance(plain, JuminhyoContent)
    assert (plain.persons[0].foreign, plain.persons[0].tsusho) == (None, "阮　文安")
    japanese = order(session, KENICHI, K.JUMINHYO).content.body
    assert isinstance(japanese, JuminhyoContent)
    assert (japanese.persons[0].tsusho, japanese.persons[0].western_dates) == (None, False)


@pytest.mark.parametrize(
    ("status", "card", "category"),
    [("特別永住者", "SP1234567890", "特別永住者"), ("定住者", "AB12345678CD", "中長期在留者"), ("定住者", None, None)],
)
def test_a_record_without_a_category_has_it_derived_where_the_record_tells(
    session: Session, status: str, card: str | None, category: str | None
) -> None:
    nguyen = session.get(Resident, NGUYEN)
    assert nguyen is not None
    nguyen.foreign_resident_category, nguyen.residence_status, nguyen.residence_card_number = None, status, card
    session.flush()
    body = order(session, NGUYEN, K.JUMINHYO, options=frozenset({"foreign_items"})).content.body
    assert isinstance(body, JuminhyoContent) and body.persons[0].foreign is not None
    assert body.persons[0].foreign.category == category


def test_honseki_is_not_an_option_for_a_foreign_resident(session: Session) -> None:
    assert refusal(session, NGUYEN, K.JUMINHYO, options=frozenset({"honseki"})) == "option_not_allowed"
    assert refusal(session, KENICHI, K.JUMINHYO, options=frozenset({"foreign_items"})) == "option_not_allowed"
    assert refusal(session, KENICHI, K.JUMINHYO, options=frozenset({"juminhyo_code"})) == "option_not_allowed"


def test_kisaijiko_has_a_fixed_format_without_options(session: Session) -> None:
    body = order(session, KENICHI, K.KISAIJIKO).content.body
    assert isinstance(body, JuminhyoContent)
    assert body.persons[0].relationship == "世帯主" and body.persons[0].my_number is None
    assert refusal(session, KENICHI, K.KISAIJIKO, options=frozenset({"setainushi"})) == "option_not_allowed"


# -- who may use the service at all ---------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("moved_out", "resident_moved_out"),
        ("deceased", "resident_deceased"),
        ("dv_support", "dv_support_measure"),
        ("change_pending", "change_pending"),
    ],
)
def test_a_requester_whose_record_is_not_current_is_refused(session: Session, status: str, code: str) -> None:
    set_status(session, SUZUKI, status)
    with pytest.raises(RuleViolation) as caught:
        menu_for(session, SUZUKI, NOON)
    assert caught.value.code == code
    assert refusal(session, SUZUKI, K.JUMINHYO) == code


def test_the_demo_refusals_hold(session: Session) -> None:
    expected = {TANAKA: "dv_support_measure", WATANABE: "change_pending", YOSHIDA: "gaiji_in_record", YUI: "under_15"}
    for resident_id, code in expected.items():
        with pytest.raises(RuleViolation) as caught:
            menu_for(session, resident_id, NOON)
        assert caught.value.code == code, resident_id


def test_an_unknown_resident_is_refused(session: Session) -> None:
    with pytest.raises(RuleViolation) as caught:
        menu_for(session, "toride-9999", NOON)
    assert caught.value.code == "resident_not_found"


def test_service_starts_the_day_after_moving_in(session: Session) -> None:
    resident = session.get(Resident, KOBAYASHI)
    assert resident is not None and resident.became_resident_on == BUILT_ON
    same_day = datetime(2026, 11, 26, 22, 0, tzinfo=JST)
    assert refusal(session, KOBAYASHI, K.JUMINHYO, now=same_day) == "same_day_move_in"
    assert order(session, KOBAYASHI, K.JUMINHYO, now=datetime(2026, 11, 27, 6, 30, tzinfo=JST)).copies == 1


def test_under_15s_cannot_use_the_service_until_their_15th_birthday(session: Session) -> None:
    assert refusal(session, YUI, K.JUMINHYO, now=datetime(2030, 2, 13, 12, 0, tzinfo=JST)) == "under_15"
    assert order(session, YUI, K.JUMINHYO, now=datetime(2030, 2, 14, 12, 0, tzinfo=JST)).copies == 1


def test_household_members_with_support_measures_are_hidden_without_saying_why(session: Session) -> None:
    set_status(session, MISAKI, "dv_support")
    offer = next(o for o in menu_for(session, KENICHI, NOON).municipalities[0].offers if o.kind is K.JUMINHYO)
    assert MISAKI not in {p.person_id for p in offer.persons}
    assert not offer.whole_household_allowed
    assert refusal(session, KENICHI, K.JUMINHYO, person_ids=(MISAKI,)) == "person_not_allowed"
    assert refusal(session, KENICHI, K.JUMINHYO, whole_household=True) == "person_not_allowed"


def test_a_household_member_with_a_pending_change_blocks_the_whole_household(session: Session) -> None:
    set_status(session, SHOTA, "change_pending")
    assert refusal(session, KENICHI, K.JUMINHYO, whole_household=True) == "change_pending"
    assert order(session, KENICHI, K.JUMINHYO, person_ids=(KENICHI, MISAKI)).content.subject_names() == (
        "佐藤　健一",
        "佐藤　美咲",
    )


def test_a_household_member_with_an_unregistered_character_cannot_be_printed(session: Session) -> None:
    shota = session.get(Resident, SHOTA)
    assert shota is not None
    shota.has_gaiji = True
    session.flush()
    assert refusal(session, KENICHI, K.JUMINHYO, person_ids=(SHOTA,)) == "gaiji_in_record"


# -- 印鑑登録証明書 -----------------------------------------------------------------------


def test_seal_certificate_for_the_holder_with_an_active_registration(session: Session) -> None:
    body = order(session, KENICHI, K.INKAN).content.body
    assert isinstance(body, InkanContent)
    assert (body.name, body.registration_number, body.seal_text) == ("佐藤　健一", "08217-0001234", "佐藤")


def test_seal_certificate_is_for_the_holder_only(session: Session) -> None:
    assert refusal(session, KENICHI, K.INKAN, person_ids=(MISAKI,)) == "person_not_allowed"
    assert refusal(session, KENICHI, K.INKAN, whole_household=True) == "person_not_allowed"


def test_seal_certificate_refused_without_or_with_a_cancelled_registration(session: Session) -> None:
    assert refusal(session, ITO, K.INKAN) == "seal_cancelled"
    assert refusal(session, SHOTA, K.INKAN) == "seal_not_registered"
    seal = session.query(SealRegistration).filter_by(resident_id=KENICHI).one()
    seal.status, seal.cancelled_on = "cancelled", date(2026, 11, 27)
    session.flush()
    assert refusal(session, KENICHI, K.INKAN) == "seal_cancelled"


# -- 所得・課税証明書 ---------------------------------------------------------------------


def test_tax_certificate_is_for_the_latest_fiscal_year(session: Session) -> None:
    body = order(session, KENICHI, K.SHOTOKU_KAZEI).content.body
    assert isinstance(body, TaxContent)
    assert (body.fiscal_year, body.income_year, body.salary_income) == (2026, 2025, 5_200_000)
    assert refusal(session, KENICHI, K.SHOTOKU_KAZEI, fiscal_year=2025) == "tax_year_not_offered"


def test_tax_certificate_shows_the_real_employment_income(session: Session) -> None:
    """5,200,000 yen of 令和7年分 salary is 3,720,000 of 給与所得 by the 給与所得控除 table
    (not the 3,460,000 of a 30% rule of thumb), and the demo's 総所得金額 is that income."""
    body = order(session, KENICHI, K.SHOTOKU_KAZEI).content.body
    assert isinstance(body, TaxContent)
    assert (body.salary_income, body.employment_income, body.total_income) == (
        5_200_000,
        3_720_000,
        3_720_000,
    )


def test_the_latest_fiscal_year_switches_on_1_june(session: Session) -> None:
    may = order(session, KENICHI, K.SHOTOKU_KAZEI, now=datetime(2026, 5, 31, 22, 59, tzinfo=JST)).content.body
    june = order(session, KENICHI, K.SHOTOKU_KAZEI, now=datetime(2026, 6, 1, 6, 30, tzinfo=JST)).content.body
    assert isinstance(may, TaxContent) and isinstance(june, TaxContent)
    assert (may.fiscal_year, june.fiscal_year) == (2025, 2026)


def test_tax_certificate_refused_without_a_declaration(session: Session) -> None:
    assert refusal(session, SHOTA, K.SHOTOKU_KAZEI) == "tax_no_declaration"  # record, not declared
    assert refusal(session, ITO, K.SHOTOKU_KAZEI) == "tax_no_declaration"  # no record at all
    assert refusal(session, KENICHI, K.SHOTOKU_KAZEI, person_ids=(MISAKI,)) == "person_not_allowed"


# -- 戸籍 and 附票 ------------------------------------------------------------------------


def test_koseki_zenbu_from_the_honsekichi_holds_every_member(session: Session) -> None:
    prepared = order(session, KENICHI, K.KOSEKI_ZENBU, municipality=TSUKUBA, role=H)
    body = prepared.content.body
    assert isinstance(body, KosekiContent) and prepared.content.issuer.name == "つくば市"
    assert body.hitto_sha == "佐藤　健一" and body.persons[0].is_hitto_sha
    assert [p.name for p in body.persons] == ["佐藤　健一", "佐藤　美咲", "佐藤　翔太", "佐藤　結衣"]
    assert prepared.fee_per_copy_yen == 400


def test_koseki_events_carry_the_spouse_at_marriage_and_the_birth_filing(session: Session) -> None:
    """A 婚姻 names the spouse as called at the marriage (美咲 was 中村 then); a 出生 carries
    its 届出日 and 届出人 from the record."""
    body = order(session, KENICHI, K.KOSEKI_ZENBU, municipality=TSUKUBA, role=H).content.body
    assert isinstance(body, KosekiContent)
    kenichi, misaki = body.persons[0], body.persons[1]
    birth, marriage = kenichi.events
    assert (birth.kind, birth.filed_on, birth.informant) == ("出生", date(1981, 4, 20), "父")
    assert (marriage.kind, marriage.spouse_name) == ("婚姻", "中村　美咲")
    assert misaki.events[1].spouse_name == "佐藤　健一"
    assert "【従前戸籍】" in misaki.events[1].detail and "配偶者" not in misaki.events[1].detail


def test_koseki_kojin_holds_only_the_chosen_members(session: Session) -> None:
    shota = session.query(KosekiMember).filter_by(resident_id=SHOTA, koseki_id="tsukuba-k0001").one()
    body = order(session, KENICHI, K.KOSEKI_KOJIN, municipality=TSUKUBA, role=H, person_ids=(shota.id,)).content.body
    assert isinstance(body, KosekiContent)
    assert [p.name for p in body.persons] == ["佐藤　翔太"]


def test_a_removed_member_gets_no_koseki_kojin(session: Session) -> None:
    shota = session.query(KosekiMember).filter_by(resident_id=SHOTA, koseki_id="tsukuba-k0001").one()
    shota.removed = True
    session.flush()
    assert (
        refusal(session, KENICHI, K.KOSEKI_KOJIN, municipality=TSUKUBA, role=H, person_ids=(shota.id,))
        == "person_not_allowed"
    )


def test_a_person_outside_the_koseki_cannot_be_named(session: Session) -> None:
    assert (
        refusal(session, KENICHI, K.KOSEKI_KOJIN, municipality=TSUKUBA, role=H, person_ids=("toride-k0001-1",))
        == "person_not_allowed"
    )


def test_joseki_and_kaisei_gen_koseki_are_not_issued(session: Session) -> None:
    koseki = session.get(Koseki, "tsukuba-k0001")
    assert koseki is not None
    for status in ("joseki", "kaisei_gen"):
        koseki.status = status
        session.flush()
        assert refusal(session, KENICHI, K.KOSEKI_ZENBU, municipality=TSUKUBA, role=H) == "koseki_not_current"


def test_fuhyo_lists_each_members_addresses(session: Session) -> None:
    body = order(session, KENICHI, K.KOSEKI_FUHYO, municipality=TSUKUBA, role=H, whole_household=True).content.body
    assert isinstance(body, FuhyoContent)
    kenichi = body.persons[0]
    assert [e.address for e in kenichi.entries] == ["茨城県つくば市北条１２３番地", "茨城県取手市寺田５１３９番地"]
    assert len(body.persons) == 4


def test_koseki_kept_by_the_jushochi_needs_no_registration(session: Session) -> None:
    body = order(session, SUZUKI, K.KOSEKI_ZENBU).content.body
    assert isinstance(body, KosekiContent) and body.honseki == "茨城県取手市藤代七百番地"
    assert refusal(session, KENICHI, K.KOSEKI_ZENBU) == "koseki_not_found"  # 取手市 keeps no 戸籍 of his


def test_honsekichi_needs_a_registration_that_is_already_effective(session: Session) -> None:
    assert refusal(session, SUZUKI, K.KOSEKI_ZENBU, municipality=TSUKUBA, role=H) == "honseki_not_registered"
    # 美咲 applied on BUILT_ON (Thursday); it takes effect 3 business days later (Tuesday).
    assert (
        refusal(
            session, MISAKI, K.KOSEKI_ZENBU, municipality=TSUKUBA, role=H, now=datetime(2026, 11, 30, 12, 0, tzinfo=JST)
        )
        == "honseki_registration_pending"
    )
    prepared = order(
        session, MISAKI, K.KOSEKI_ZENBU, municipality=TSUKUBA, role=H, now=datetime(2026, 12, 1, 12, 0, tzinfo=JST)
    )
    assert "佐藤　美咲" in prepared.content.subject_names()


def test_honsekichi_issues_only_koseki_certificates(session: Session) -> None:
    assert refusal(session, KENICHI, K.JUMINHYO, municipality=TSUKUBA, role=H) == "certificate_not_offered"
    assert refusal(session, KENICHI, K.JUMINHYO, municipality=TSUKUBA, role=J) == "municipality_not_available"


# -- the menu ------------------------------------------------------------------------------


def test_menu_shows_the_jushochi_and_each_registered_honsekichi(session: Session) -> None:
    menu = menu_for(session, KENICHI, NOON)
    assert [(m.code, m.role) for m in menu.municipalities] == [(TORIDE, J), (TSUKUBA, H)]
    toride, tsukuba = menu.municipalities
    assert [o.kind for o in toride.offers] == [K.JUMINHYO, K.KISAIJIKO, K.INKAN, K.SHOTOKU_KAZEI]
    assert all(o.available for o in toride.offers) and toride.open
    assert [o.kind for o in tsukuba.offers] == [K.KOSEKI_ZENBU, K.KOSEKI_KOJIN, K.KOSEKI_FUHYO]
    juminhyo = toride.offers[0]
    assert [p.relationship for p in juminhyo.persons] == ["本人", "妻", "子", "子"]
    assert {o.code for o in juminhyo.options} == {"setainushi", "honseki", "my_number"}
    tax = toride.offers[3]
    assert tax.fiscal_year == 2026 and tax.fee_yen == 200


def test_menu_says_why_an_offer_is_unavailable(session: Session) -> None:
    offers = {o.kind: o for o in menu_for(session, ITO, NOON).municipalities[0].offers}
    assert not offers[K.INKAN].available
    assert offers[K.INKAN].unavailable_reason == "seal_cancelled"
    assert offers[K.INKAN].unavailable_message_ja and offers[K.INKAN].unavailable_message_en
    pending = menu_for(session, MISAKI, NOON).municipalities[1]
    assert (pending.open, pending.closed_reason, pending.offers) == (False, "honseki_registration_pending", ())
