"""The demo world: two real municipalities with invented people who exercise every rule.

取手市 (Toride, 08217) is the 住所地 of everyone; つくば市 (Tsukuba, 08220) keeps the 戸籍 of
the 佐藤 family and is their 本籍地. Town names (町名) are real, 番地 are made up, every
person, number and figure is invented. Fees, hours, mayors' names and Tsukuba's start date
are demo values, not the municipalities' real ones; Toride's start date (2016-07-01) is real.

Dates that a rule compares with today (a same-day move-in, a 利用登録 not yet in effect, the
latest tax year) are set relative to the day the demo is built.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy.orm import Session

from certserver.db.models.registry import (
    Closure,
    FuhyoEntry,
    HonsekiRegistration,
    Household,
    Koseki,
    KosekiMember,
    KosekiStatus,
    Resident,
    ResidentStatus,
    SealRegistration,
    SealStatus,
    TaxRecord,
)
from certserver.demo.builders import KOSEKI_WEEKDAY_HOURS, add_fees, add_municipality
from certserver.demo.my_number import synthetic
from certserver.documents.content import CertificateKind as K
from certserver.services.rules.calendar import add_business_days, latest_fiscal_year
from certserver.services.rules.employment_income import employment_income

TORIDE = "08217"
TSUKUBA = "08220"
DEMO_SEED = 20160701  # fixed: the same demo every time (My Numbers, 住民票コード)

TORIDE_FEES = {
    K.JUMINHYO: 200,
    K.KISAIJIKO: 200,
    K.INKAN: 200,
    K.SHOTOKU_KAZEI: 200,
    K.KOSEKI_ZENBU: 350,
    K.KOSEKI_KOJIN: 350,
    K.KOSEKI_FUHYO: 200,
}
TSUKUBA_FEES = {
    K.JUMINHYO: 250,
    K.KISAIJIKO: 250,
    K.INKAN: 250,
    K.SHOTOKU_KAZEI: 250,
    K.KOSEKI_ZENBU: 400,
    K.KOSEKI_KOJIN: 400,
    K.KOSEKI_FUHYO: 250,
}

SATO_ADDRESS = "茨城県取手市寺田５１３９番地"
SATO_HONSEKI = "茨城県つくば市北条百二十三番地"
SUZUKI_HONSEKI = "茨城県取手市藤代七百番地"


@dataclass(frozen=True)
class DemoCard:
    """A card `certserver init --demo` issues, and what the kiosk should do with it."""

    resident_id: str
    pin: str  # demo PIN of a synthetic person (test-harness data, printed in the index)
    password: str  # demo signing password
    expect: str  # "issued" or the refusal code the kiosk receives (never a confidential one), with a note
    status_after_issue: str | None = None  # e.g. moved_out: the card predates the move


@dataclass(frozen=True)
class DemoWorld:
    residents: int
    households: int
    cards: tuple[DemoCard, ...]


class _Numbers:
    """Deterministic synthetic identifiers."""

    def __init__(self) -> None:
        self.rng = random.Random(DEMO_SEED)

    def my_number(self) -> str:
        return synthetic(self.rng)

    def juminhyo_code(self) -> str:
        return f"{self.rng.randrange(10**11):011d}"


def _event(kind: str, on: date, detail: str, **items: Any) -> dict[str, Any]:
    """A 身分事項 entry; `items`: spouse_name, filed_on (a date), informant."""
    extra = {key: value.isoformat() if isinstance(value, date) else value for key, value in items.items()}
    return {"kind": kind, "on": on.isoformat(), "detail": detail, **extra}


def _birth(on: date, place: str, filed_after_days: int, informant: str) -> dict[str, Any]:
    return _event("出生", on, f"【出生地】{place}", filed_on=on + timedelta(days=filed_after_days), informant=informant)


def _tax(
    resident_id: str, fiscal_year: int, salary: int, *, address: str, dependents: int = 0, declared: bool = True
) -> TaxRecord:
    """A plausible 所得・課税 record from a salary: the real 給与所得, simplified deductions and tax."""
    if not declared:
        return TaxRecord(resident_id=resident_id, fiscal_year=fiscal_year, declared=False, address_on_jan1=address)
    income = employment_income(salary, fiscal_year - 1)
    deductions = 430_000 + 380_000 * dependents + int(salary * 0.14)
    taxable = max(0, income - deductions) // 1000 * 1000
    return TaxRecord(
        resident_id=resident_id,
        fiscal_year=fiscal_year,
        declared=True,
        address_on_jan1=address,
        total_income=income,
        salary_income=salary,
        deductions_total=deductions,
        taxable_income=taxable,
        municipal_tax=taxable * 6 // 100 + 3_500 if taxable else 0,
        prefectural_tax=taxable * 4 // 100 + 1_500 if taxable else 0,
        dependents=dependents,
    )


def _municipalities(session: Session, today: date) -> None:
    add_municipality(
        session,
        code=TORIDE,
        name="取手市",
        name_en="Toride City",
        prefecture="茨城県",
        mayor_name="見本　太郎",
        participation_start=date(2016, 7, 1),
        allows_my_number_on_juminhyo=True,
    )
    add_municipality(
        session,
        code=TSUKUBA,
        name="つくば市",
        name_en="Tsukuba City",
        prefecture="茨城県",
        mayor_name="見本　次郎",
        participation_start=date(2016, 10, 1),
        koseki_hours=KOSEKI_WEEKDAY_HOURS,
    )
    add_fees(session, TORIDE, TORIDE_FEES, valid_from=date(2016, 7, 1))
    # A past temporary discount, to show the dated table (it no longer applies).
    add_fees(
        session,
        TORIDE,
        {K.JUMINHYO: 100, K.INKAN: 100},
        valid_from=date(2023, 4, 1),
        valid_to=date(2024, 3, 31),
        label="demo value (temporary discount)",
    )
    add_fees(session, TSUKUBA, TSUKUBA_FEES, valid_from=date(2016, 10, 1))
    session.add(
        Closure(
            municipality_code=None,
            closed_on=today + timedelta(days=45),
            reason="システム保守のため全国一斉休止 (demo value)",
        )
    )


def _sato_family(session: Session, numbers: _Numbers, today: date) -> None:
    session.add(Household(id="toride-h001", municipality_code=TORIDE, address=SATO_ADDRESS))
    common: dict[str, Any] = {
        "municipality_code": TORIDE,
        "household_id": "toride-h001",
        "address": SATO_ADDRESS,
        "previous_address": "茨城県つくば市北条１２３番地",
        "honseki": SATO_HONSEKI,
        "hitto_sha": "佐藤　健一",
    }
    people = [
        ("toride-0001", "佐藤　健一", "さとう　けんいち", date(1981, 4, 12), "男", "世帯主", ResidentStatus.ACTIVE),
        ("toride-0002", "佐藤　美咲", "さとう　みさき", date(1983, 9, 3), "女", "妻", ResidentStatus.ACTIVE),
        ("toride-0003", "佐藤　翔太", "さとう　しょうた", date(2009, 5, 20), "男", "子", ResidentStatus.ACTIVE),
        ("toride-0004", "佐藤　結衣", "さとう　ゆい", date(2015, 2, 14), "女", "子", ResidentStatus.ACTIVE),
        ("toride-0005", "佐藤　正男", "さとう　まさお", date(1950, 1, 8), "男", "父", ResidentStatus.DECEASED),
    ]
    for resident_id, name, kana, born, sex, zokugara, status in people:
        since = max(date(2012, 4, 1), born)
        session.add(
            Resident(
                id=resident_id,
                name=name,
                name_kana=kana,
                birth_date=born,
                sex=sex,
                zokugara=zokugara,
                became_resident_on=since,
                address_since=since,
                my_number=numbers.my_number(),
                juminhyo_code=numbers.juminhyo_code(),
                status=status.value,
                has_gaiji=False,
                **common,
            )
        )
    session.flush()
    fy = latest_fiscal_year(today)
    for year in (fy - 1, fy):
        session.add(_tax("toride-0001", year, 5_200_000, address=SATO_ADDRESS, dependents=2))
        session.add(_tax("toride-0002", year, 1_300_000, address=SATO_ADDRESS))
        session.add(_tax("toride-0003", year, 0, address=SATO_ADDRESS, declared=False))
    session.add_all(
        [
            SealRegistration(
                resident_id="toride-0001",
                registration_number="08217-0001234",
                seal_text="佐藤",
                registered_on=date(2012, 4, 10),
                status=SealStatus.ACTIVE.value,
            ),
            SealRegistration(
                resident_id="toride-0002",
                registration_number="08217-0001235",
                seal_text="美咲",
                registered_on=date(2012, 4, 10),
                status=SealStatus.ACTIVE.value,
            ),
        ]
    )
    _sato_koseki(session)
    session.add_all(
        [
            # 健一's 利用登録 with つくば市 took effect long ago; 美咲 applied today.
            HonsekiRegistration(
                resident_id="toride-0001",
                municipality_code=TSUKUBA,
                registered_on=date(2024, 5, 10),
                effective_from=add_business_days(date(2024, 5, 10), 2),
            ),
            HonsekiRegistration(
                resident_id="toride-0002",
                municipality_code=TSUKUBA,
                registered_on=today,
                effective_from=add_business_days(today, 3),
            ),
        ]
    )


def _sato_koseki(session: Session) -> None:
    session.add(
        Koseki(
            id="tsukuba-k0001",
            municipality_code=TSUKUBA,
            honseki=SATO_HONSEKI,
            hitto_sha="佐藤　健一",
            compiled_on=date(2008, 10, 10),
            status=KosekiStatus.CURRENT.value,
        )
    )
    born_at = "茨城県つくば市"
    # A 婚姻 names the spouse as they were called at the marriage: 美咲 was still 中村.
    members = [
        (
            "tsukuba-k0001-1",
            "toride-0001",
            "佐藤　健一",
            date(1981, 4, 12),
            "佐藤　正男",
            "佐藤　和子",
            "長男",
            True,
            [
                _birth(date(1981, 4, 12), born_at, 8, "父"),
                _event("婚姻", date(2008, 10, 10), "", spouse_name="中村　美咲"),
            ],
        ),
        (
            "tsukuba-k0001-2",
            "toride-0002",
            "佐藤　美咲",
            date(1983, 9, 3),
            "中村　浩",
            "中村　恵子",
            "長女",
            False,
            [
                _birth(date(1983, 9, 3), "茨城県土浦市", 10, "父"),
                _event(
                    "婚姻", date(2008, 10, 10), "【従前戸籍】茨城県土浦市大町五番地　中村　浩", spouse_name="佐藤　健一"
                ),
            ],
        ),
        (
            "tsukuba-k0001-3",
            "toride-0003",
            "佐藤　翔太",
            date(2009, 5, 20),
            "佐藤　健一",
            "佐藤　美咲",
            "長男",
            False,
            [_birth(date(2009, 5, 20), born_at, 7, "父")],
        ),
        (
            "tsukuba-k0001-4",
            "toride-0004",
            "佐藤　結衣",
            date(2015, 2, 14),
            "佐藤　健一",
            "佐藤　美咲",
            "長女",
            False,
            [_birth(date(2015, 2, 14), "茨城県取手市", 12, "母")],
        ),
    ]
    for position, (member_id, resident_id, name, born, father, mother, zokugara, head, events) in enumerate(members, 1):
        session.add(
            KosekiMember(
                id=member_id,
                koseki_id="tsukuba-k0001",
                resident_id=resident_id,
                position=position,
                name=name,
                birth_date=born,
                father=father,
                mother=mother,
                zokugara=zokugara,
                is_hitto_sha=head,
                events=events,
                removed=False,
                has_gaiji=False,
            )
        )
    session.flush()
    tsukuba_since = {
        "tsukuba-k0001-1": date(2008, 10, 10),
        "tsukuba-k0001-2": date(2008, 10, 10),
        "tsukuba-k0001-3": date(2009, 5, 20),
    }
    for member_id, _resident, _name, born, *_rest in members:
        if member_id in tsukuba_since:
            session.add(
                FuhyoEntry(member_id=member_id, address="茨城県つくば市北条１２３番地", since=tsukuba_since[member_id])
            )
        session.add(FuhyoEntry(member_id=member_id, address=SATO_ADDRESS, since=max(date(2012, 4, 1), born)))
    # 正男's own 戸籍 closed when its last member left: a 除籍, which kiosks do not issue.
    session.add(
        Koseki(
            id="tsukuba-k0002",
            municipality_code=TSUKUBA,
            honseki=SATO_HONSEKI.replace("百二十三", "百二十"),
            hitto_sha="佐藤　正男",
            compiled_on=date(1978, 6, 1),
            status=KosekiStatus.JOSEKI.value,
        )
    )
    session.flush()
    session.add_all(
        [
            KosekiMember(
                id="tsukuba-k0002-1",
                koseki_id="tsukuba-k0002",
                resident_id="toride-0005",
                position=1,
                name="佐藤　正男",
                birth_date=date(1950, 1, 8),
                father=None,
                mother=None,
                zokugara="長男",
                is_hitto_sha=True,
                removed=True,
                has_gaiji=False,
                events=[_event("死亡", date(2025, 2, 1), "【死亡地】茨城県取手市")],
            ),
            KosekiMember(
                id="tsukuba-k0002-3",
                koseki_id="tsukuba-k0002",
                resident_id="toride-0001",
                position=3,
                name="佐藤　健一",
                birth_date=date(1981, 4, 12),
                father="佐藤　正男",
                mother="佐藤　和子",
                zokugara="長男",
                is_hitto_sha=False,
                removed=True,
                has_gaiji=False,
                events=[_event("婚姻", date(2008, 10, 10), "【新本籍】" + SATO_HONSEKI, spouse_name="中村　美咲")],
            ),
        ]
    )


def _single(session: Session, numbers: _Numbers, resident_id: str, address: str, **fields: Any) -> None:
    household_id = resident_id.replace("toride-", "toride-h")
    session.add(Household(id=household_id, municipality_code=TORIDE, address=address))
    values: dict[str, Any] = {
        "municipality_code": TORIDE,
        "household_id": household_id,
        "address": address,
        "zokugara": "世帯主",
        "became_resident_on": date(2015, 4, 1),
        "address_since": date(2015, 4, 1),
        "previous_address": None,
        "honseki": None,
        "hitto_sha": None,
        "my_number": numbers.my_number(),
        "juminhyo_code": numbers.juminhyo_code(),
        "status": ResidentStatus.ACTIVE.value,
        "has_gaiji": False,
    }
    values.update(fields)
    session.add(Resident(id=resident_id, **values))
    session.flush()


def _singles(session: Session, numbers: _Numbers, today: date) -> None:
    fy = latest_fiscal_year(today)
    address = "茨城県取手市井野２３４番地"
    _single(
        session,
        numbers,
        "toride-0010",
        address,
        name="鈴木　一郎",
        name_kana="すずき　いちろう",
        birth_date=date(1975, 11, 30),
        sex="男",
        honseki=SUZUKI_HONSEKI,
        hitto_sha="鈴木　一郎",
        previous_address="東京都足立区千住一丁目２番３号",
    )
    session.add(
        SealRegistration(
            resident_id="toride-0010",
            registration_number="08217-0002001",
            seal_text="鈴木",
            registered_on=date(2015, 4, 20),
            status=SealStatus.ACTIVE.value,
        )
    )
    session.add(_tax("toride-0010", fy, 4_100_000, address=address))
    # 鈴木's 戸籍 is kept by 取手市 itself: 戸籍 certificates without a 利用登録.
    session.add(
        Koseki(
            id="toride-k0001",
            municipality_code=TORIDE,
            honseki=SUZUKI_HONSEKI,
            hitto_sha="鈴木　一郎",
            compiled_on=date(2001, 5, 1),
            status=KosekiStatus.CURRENT.value,
        )
    )
    session.flush()
    session.add(
        KosekiMember(
            id="toride-k0001-1",
            koseki_id="toride-k0001",
            resident_id="toride-0010",
            position=1,
            name="鈴木　一郎",
            birth_date=date(1975, 11, 30),
            father="鈴木　和夫",
            mother="鈴木　節子",
            zokugara="長男",
            is_hitto_sha=True,
            removed=False,
            has_gaiji=False,
            events=[
                _birth(date(1975, 11, 30), "茨城県取手市", 9, "父"),
                _event("分籍", date(2001, 5, 1), "【従前戸籍】茨城県取手市藤代七百番地　鈴木　和夫"),
            ],
        )
    )
    session.flush()
    session.add_all(
        [
            FuhyoEntry(member_id="toride-k0001-1", address="東京都足立区千住一丁目２番３号", since=date(2001, 5, 1)),
            FuhyoEntry(member_id="toride-k0001-1", address=address, since=date(2015, 4, 1)),
        ]
    )

    foreign_address = "茨城県取手市戸頭六丁目１２番３号"
    _single(
        session,
        numbers,
        "toride-0020",
        foreign_address,
        name="NGUYEN VAN AN",
        name_kana="グエン　ヴァン　アン",
        birth_date=date(1994, 7, 2),
        sex="男",
        became_resident_on=date(2022, 4, 1),
        address_since=date(2022, 4, 1),
        nationality="ベトナム",
        residence_card_number="AB12345678CD",
        residence_status="技術・人文知識・国際業務",
        period_of_stay="5年",
        period_expires_on=date(2029, 3, 31),
        tsusho="阮　文安",
        foreign_resident_category="中長期在留者",
    )
    session.add(_tax("toride-0020", fy, 3_600_000, address=foreign_address))

    _single(
        session,
        numbers,
        "toride-0030",
        "茨城県取手市藤代１５０番地",
        name="高橋　直樹",
        name_kana="たかはし　なおき",
        birth_date=date(1988, 3, 15),
        sex="男",
    )  # moves out after the card is issued (DemoCard)
    _single(
        session,
        numbers,
        "toride-0040",
        "茨城県取手市白山二丁目５番８号",
        name="田中　由美",
        name_kana="たなか　ゆみ",
        birth_date=date(1990, 12, 1),
        sex="女",
        status=ResidentStatus.DV_SUPPORT.value,
    )
    _single(
        session,
        numbers,
        "toride-0050",
        "茨城県取手市新町四丁目１０番２２号",
        name="伊藤　誠",
        name_kana="いとう　まこと",
        birth_date=date(1968, 6, 6),
        sex="男",
    )
    session.add(
        SealRegistration(
            resident_id="toride-0050",
            registration_number="08217-0003001",
            seal_text="伊藤",
            registered_on=date(2010, 1, 5),
            status=SealStatus.CANCELLED.value,
            cancelled_on=date(2025, 9, 30),
        )
    )
    _single(
        session,
        numbers,
        "toride-0060",
        "茨城県取手市台宿一丁目３番１５号",
        name="渡辺　さくら",
        name_kana="わたなべ　さくら",
        birth_date=date(1999, 4, 1),
        sex="女",
        status=ResidentStatus.CHANGE_PENDING.value,
    )
    # 𠮷 (U+20BB7, 「つちよし」) is not in the IPAex fonts: an unregistered character (外字).
    _single(
        session,
        numbers,
        "toride-0070",
        "茨城県取手市稲１２００番地",
        name="\U00020bb7田　大輔",
        name_kana="よしだ　だいすけ",
        birth_date=date(1985, 10, 10),
        sex="男",
        has_gaiji=True,
    )
    _single(
        session,
        numbers,
        "toride-0080",
        "茨城県取手市米田５５０番地",
        name="小林　陽介",
        name_kana="こばやし　ようすけ",
        birth_date=date(1992, 8, 8),
        sex="男",
        became_resident_on=today,
        address_since=today,
        previous_address="千葉県我孫子市本町二丁目１番１号",
    )


def demo_cards(today: date) -> tuple[DemoCard, ...]:
    """The cards of the demo, in the order the index lists them."""
    pending_until = add_business_days(today, 3).isoformat()
    return (
        DemoCard("toride-0001", "1234", "SATO0001", "issued (住所地 取手市 and 本籍地 つくば市)"),
        DemoCard(
            "toride-0002",
            "2345",
            "SATO0002",
            f"issued; 本籍地 つくば市: honseki_registration_pending until {pending_until}",
        ),
        DemoCard("toride-0003", "3456", "SATO0003", "issued; 所得・課税証明書: tax_no_declaration"),
        DemoCard("toride-0004", "4567", "SATO0004", "under_15"),
        DemoCard("toride-0010", "5678", "SUZUKI01", "issued (戸籍 from 取手市 itself)"),
        DemoCard("toride-0020", "6789", "NGUYEN01", "issued (foreign resident items)"),
        DemoCard("toride-0030", "7890", "TAKAHASHI1", "resident_moved_out", ResidentStatus.MOVED_OUT.value),
        # A support measure (支援措置) in force: the kiosk, and the operator's card tray that
        # shows these notes, only ever see the neutral code.
        DemoCard("toride-0040", "8901", "TANAKA01", "not_available_at_kiosk"),
        DemoCard("toride-0050", "9012", "ITO00001", "issued; 印鑑登録証明書: seal_cancelled"),
        DemoCard("toride-0060", "0123", "WATANABE1", "change_pending"),
        DemoCard("toride-0070", "1357", "YOSHIDA1", "gaiji_in_record"),
        DemoCard("toride-0080", "2468", "KOBAYASHI1", f"same_day_move_in on {today.isoformat()}, issued afterwards"),
    )


def build_demo_registry(session: Session, today: date) -> DemoWorld:
    """Add the demo municipalities, people, 戸籍 and records to an empty registry (flushes,
    never commits). `today` is the JST date the relative dates count from.

    Raises sqlalchemy.exc.IntegrityError when the registry already holds demo rows."""
    numbers = _Numbers()
    _municipalities(session, today)
    session.flush()
    _sato_family(session, numbers, today)
    _singles(session, numbers, today)
    session.flush()
    residents = session.query(Resident).count()
    households = session.query(Household).count()
    return DemoWorld(residents=residents, households=households, cards=demo_cards(today))
