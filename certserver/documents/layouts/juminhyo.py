"""住民票の写し: the household's address, then one block per person printed.

Only what the content carries is printed: 続柄 with 世帯主・続柄, 本籍・筆頭者 when asked,
個人番号 only when present, foreign residents' items for foreign residents. 住民票コード has
no field in the content, so it cannot appear. Omitted items are named (省略事項), as the
real certificates do, so a reader knows the absence is deliberate. A foreign resident's
dates are in the Western calendar and the 通称 stands under the name, as municipalities
print them.
"""

from __future__ import annotations

from datetime import date

from certserver.documents.content import CertificateContent, JuminhyoContent, JuminhyoPerson
from certserver.documents.layouts.base import (
    Layout,
    Line,
    heading,
    label_value,
    label_values,
    rule,
    text_line,
    wareki,
)

CERTIFY_WHOLE = "この写しは、世帯全員の住民票の原本と相違ないことを証明する。"
CERTIFY_PART = "この写しは、住民票の原本と相違ないことを証明する。"


def seireki(day: date | None) -> str:
    """A date in the Western calendar, as a foreign resident's 住民票 prints it."""
    return f"{day.year}年{day.month}月{day.day}日" if day is not None else ""


def person_lines(person: JuminhyoPerson, index: int) -> list[Line]:
    """The block of one person (shared with 住民票記載事項証明書)."""
    day = seireki if person.western_dates else wareki
    lines: list[Line] = []
    if person.name_kana:
        lines.append(label_value("ふりがな", person.name_kana, size=8.5))
    lines.append(label_value(f"氏名（{index}）", person.name, size=12))
    if person.tsusho is not None:
        lines.append(label_value("通称", person.tsusho, size=12))
    lines.append(label_values(("生年月日", day(person.birth_date)), ("性別", person.sex)))
    if person.relationship is not None:
        lines.append(label_value("続柄", person.relationship))
    lines.append(
        label_values(
            ("住民となった年月日", day(person.became_resident_on)),
            ("住所を定めた年月日", day(person.address_since)),
        )
    )
    if person.previous_address is not None:
        lines.append(label_value("前住所", person.previous_address))
    if person.honseki is not None:
        lines.append(label_value("本籍", person.honseki))
    if person.hitto_sha is not None:
        lines.append(label_value("筆頭者", person.hitto_sha))
    if person.my_number is not None:
        lines.append(label_value("個人番号", person.my_number))
    foreign = person.foreign
    if foreign is not None:
        lines.append(label_value("国籍・地域", foreign.nationality))
        if foreign.category is not None:
            lines.append(label_value("第30条の45規定区分", foreign.category))
        if foreign.residence_card_number is not None:
            lines.append(label_value("在留カード等番号", foreign.residence_card_number))
        if foreign.residence_status is not None:
            lines.append(label_value("在留資格", foreign.residence_status))
        if foreign.period_of_stay is not None or foreign.period_expires_on is not None:
            lines.append(
                label_values(
                    ("在留期間", foreign.period_of_stay or ""),
                    ("満了の日", day(foreign.period_expires_on)),
                )
            )
    lines.append(rule())
    return lines


def household_lines(body: JuminhyoContent) -> list[Line]:
    lines = [label_value("住所", body.address, size=11)]
    if body.setainushi is not None:
        lines.append(label_value("世帯主", body.setainushi, size=11))
    lines.append(rule())
    for index, person in enumerate(body.persons, start=1):
        lines.extend(person_lines(person, index))
    if body.omitted_items:
        lines.append(heading("省略事項"))
        lines.append(
            text_line(
                "この証明書では次の事項の記載を省略しています：" + "、".join(body.omitted_items),
                size=9.5,
            )
        )
    return lines


def build(content: CertificateContent) -> Layout:
    body = content.body
    if not isinstance(body, JuminhyoContent):
        raise TypeError("住民票の写し needs JuminhyoContent")
    scope = "世帯全員" if body.whole_household else "世帯一部"
    return Layout(
        title="住民票の写し",
        subtitle=f"（{scope}　{len(body.persons)}名）",
        lines=tuple(household_lines(body)),
        certification=CERTIFY_WHOLE if body.whole_household else CERTIFY_PART,
    )
