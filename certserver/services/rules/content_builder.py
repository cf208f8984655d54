"""Certificate bodies from current registry data: exactly the persons and items allowed
and asked, nothing else. 住民票コード has no field in the content and is never read here."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from certserver.db.models.registry import (
    FuhyoEntry as FuhyoRow,
)
from certserver.db.models.registry import (
    Koseki,
    KosekiMember,
    Municipality,
    Resident,
    SealRegistration,
    TaxRecord,
)
from certserver.documents.content import (
    ForeignResidentItems,
    FuhyoContent,
    FuhyoEntry,
    FuhyoPerson,
    InkanContent,
    Issuer,
    JuminhyoContent,
    JuminhyoPerson,
    KosekiContent,
    KosekiEvent,
    KosekiPerson,
    TaxContent,
)
from certserver.services.rules.employment_income import employment_income

# Option codes of a 住民票の写し (OptionChoice.code / OrderRequest.options).
OPTION_SETAINUSHI = "setainushi"  # 世帯主・続柄
OPTION_HONSEKI = "honseki"  # 本籍・筆頭者 (Japanese nationals)
OPTION_MY_NUMBER = "my_number"  # 個人番号
OPTION_FOREIGN_ITEMS = "foreign_items"  # 国籍・地域, 在留カード等番号, 在留資格 ...

OPTION_LABELS = {
    OPTION_SETAINUSHI: ("世帯主・続柄", "Head of household and relationship"),
    OPTION_HONSEKI: ("本籍・筆頭者", "Registered domicile (honseki) and head of the family register"),
    OPTION_MY_NUMBER: ("個人番号", "My Number (individual number)"),
    OPTION_FOREIGN_ITEMS: (
        "国籍・地域、在留カード等番号、在留資格等",
        "Nationality/region, residence card number, status of residence",
    ),
}

# Names of items a page must state as omitted (省略).
OMITTED_JUMINHYO_CODE = "住民票コード"


def issuer_of(municipality: Municipality) -> Issuer:
    return Issuer(
        code=municipality.code,
        name=municipality.name,
        prefecture=municipality.prefecture,
        mayor_title=municipality.mayor_title,
        mayor_name=municipality.mayor_name,
    )


SPECIAL_PERMANENT_RESIDENT = "特別永住者"
MID_TO_LONG_TERM_RESIDENT = "中長期在留者"


def foreign_resident_category(person: Resident) -> str | None:
    """The 第30条の45 区分 as recorded; for records without one, 特別永住者 by the 在留資格
    and 中長期在留者 by a 在留カード (the other 区分 cannot be told from the record)."""
    if person.foreign_resident_category is not None:
        return person.foreign_resident_category
    if person.residence_status == SPECIAL_PERMANENT_RESIDENT:
        return SPECIAL_PERMANENT_RESIDENT
    return MID_TO_LONG_TERM_RESIDENT if person.residence_card_number else None


def _foreign_items(person: Resident) -> ForeignResidentItems:
    assert person.nationality is not None
    return ForeignResidentItems(
        nationality=person.nationality,
        residence_card_number=person.residence_card_number,
        residence_status=person.residence_status,
        period_of_stay=person.period_of_stay,
        period_expires_on=person.period_expires_on,
        category=foreign_resident_category(person),
    )


def juminhyo_body(
    address: str,
    persons: Iterable[Resident],
    setainushi: Resident | None,
    options: frozenset[str],
    whole_household: bool,
) -> JuminhyoContent:
    """住民票の写し: the chosen persons with the asked items (the caller checked both)."""
    persons = tuple(persons)
    with_setainushi = OPTION_SETAINUSHI in options
    with_honseki = OPTION_HONSEKI in options
    with_my_number = OPTION_MY_NUMBER in options
    with_foreign = OPTION_FOREIGN_ITEMS in options
    lines = tuple(
        JuminhyoPerson(
            name=p.name,
            name_kana=p.name_kana,
            birth_date=p.birth_date,
            sex=p.sex,
            became_resident_on=p.became_resident_on,
            address_since=p.address_since,
            relationship=p.zokugara if with_setainushi else None,
            honseki=p.honseki if with_honseki and not p.is_foreign else None,
            hitto_sha=p.hitto_sha if with_honseki and not p.is_foreign else None,
            my_number=p.my_number if with_my_number else None,
            previous_address=p.previous_address,
            foreign=_foreign_items(p) if with_foreign and p.is_foreign else None,
            tsusho=p.tsusho if p.is_foreign else None,  # part of the name: never omitted
            western_dates=p.is_foreign,
        )
        for p in persons
    )
    omitted = []
    if not with_setainushi:
        omitted.append("世帯主・続柄")
    if not with_honseki and any(not p.is_foreign for p in persons):
        omitted.append("本籍・筆頭者")
    if not with_my_number:
        omitted.append("個人番号")
    if not with_foreign and any(p.is_foreign for p in persons):
        omitted.append("国籍・地域等")
    omitted.append(OMITTED_JUMINHYO_CODE)
    return JuminhyoContent(
        address=address,
        setainushi=setainushi.name if with_setainushi and setainushi is not None else None,
        persons=lines,
        whole_household=whole_household,
        omitted_items=tuple(omitted),
    )


def kisaijiko_body(
    address: str, persons: Iterable[Resident], setainushi: Resident | None, whole_household: bool
) -> JuminhyoContent:
    """住民票記載事項証明書 in the fixed format of the emulated municipalities: 氏名, ふりがな,
    生年月日, 性別, 住所, 住民となった年月日, 住所を定めた年月日, 世帯主・続柄."""
    lines = tuple(
        JuminhyoPerson(
            name=p.name,
            name_kana=p.name_kana,
            birth_date=p.birth_date,
            sex=p.sex,
            became_resident_on=p.became_resident_on,
            address_since=p.address_since,
            relationship=p.zokugara,
        )
        for p in persons
    )
    return JuminhyoContent(
        address=address,
        setainushi=setainushi.name if setainushi is not None else None,
        persons=lines,
        whole_household=whole_household,
        omitted_items=("本籍・筆頭者", "個人番号", "前住所", OMITTED_JUMINHYO_CODE),
    )


def inkan_body(person: Resident, seal: SealRegistration) -> InkanContent:
    return InkanContent(
        name=person.name,
        name_kana=person.name_kana,
        birth_date=person.birth_date,
        sex=person.sex,
        address=person.address,
        registration_number=seal.registration_number,
        seal_text=seal.seal_text,
    )


def tax_body(person: Resident, record: TaxRecord) -> TaxContent:
    return TaxContent(
        fiscal_year=record.fiscal_year,
        income_year=record.fiscal_year - 1,
        name=person.name,
        address=record.address_on_jan1,
        birth_date=person.birth_date,
        total_income=record.total_income,
        salary_income=record.salary_income,
        employment_income=employment_income(record.salary_income, record.fiscal_year - 1),
        deductions_total=record.deductions_total,
        taxable_income=record.taxable_income,
        municipal_tax=record.municipal_tax,
        prefectural_tax=record.prefectural_tax,
        dependents=record.dependents,
    )


def _events(member: KosekiMember) -> tuple[KosekiEvent, ...]:
    """The 身分事項 as recorded: spouse_name, filed_on and informant are optional keys of an
    event (older records carry only the free-text detail)."""
    return tuple(
        KosekiEvent(
            kind=e["kind"],
            on=date.fromisoformat(e["on"]),
            detail=e.get("detail", ""),
            spouse_name=e.get("spouse_name"),
            filed_on=date.fromisoformat(e["filed_on"]) if e.get("filed_on") else None,
            informant=e.get("informant"),
        )
        for e in member.events
    )


def koseki_body(koseki: Koseki, members: Iterable[KosekiMember]) -> KosekiContent:
    return KosekiContent(
        honseki=koseki.honseki,
        hitto_sha=koseki.hitto_sha,
        compiled_on=koseki.compiled_on,
        persons=tuple(
            KosekiPerson(
                name=m.name,
                birth_date=m.birth_date,
                father=m.father,
                mother=m.mother,
                relationship=m.zokugara,
                events=_events(m),
                is_hitto_sha=m.is_hitto_sha,
            )
            for m in members
        ),
    )


def fuhyo_body(koseki: Koseki, members: Iterable[KosekiMember]) -> FuhyoContent:
    def entries(rows: Iterable[FuhyoRow]) -> tuple[FuhyoEntry, ...]:
        return tuple(FuhyoEntry(address=r.address, since=r.since) for r in rows)

    return FuhyoContent(
        honseki=koseki.honseki,
        hitto_sha=koseki.hitto_sha,
        persons=tuple(
            FuhyoPerson(name=m.name, birth_date=m.birth_date, entries=entries(m.fuhyo_entries)) for m in members
        ),
    )
