"""戸籍全部事項証明書 (every person in the 戸籍) and 戸籍個人事項証明書 (the chosen persons),
in the computerised format: 本籍・氏名, 戸籍事項, then one block per recorded person.

A person is written by 【名】 alone (the 氏 is the 戸籍's), and each 身分事項 lists its
【items】 one per line: 【出生日】【出生地】【届出日】【届出人】, 【婚姻日】【配偶者氏名】
(the spouse's name at the marriage)【従前戸籍】. Every page but the last ends 「次頁に続く」.
"""

from __future__ import annotations

import re

from certserver.documents.content import (
    CertificateContent,
    CertificateKind,
    KosekiContent,
    KosekiEvent,
    KosekiPerson,
)
from certserver.documents.layouts.base import (
    LABEL_WIDTH,
    Layout,
    Line,
    heading,
    label_value,
    rule,
    text_line,
    wareki,
)

CERTIFY_ZENBU = "これは、戸籍に記録されている事項の全部を証明した書面である。"
CERTIFY_KOJIN = "これは、戸籍中の一部の者について記録されている事項の全部を証明した書面である。"
CONTINUED = "次頁に続く"
ITEM_X = LABEL_WIDTH  # a 身分事項's 【items】 stand in one column under its first
_ITEM = re.compile(r"【[^】]+】[^【]*")


def given_name(name: str) -> str:
    """The 名 of a full name written 氏 + U+3000 + 名 (the whole name when it has no space)."""
    return name.split("\u3000", 1)[-1]


def _event_items(event: KosekiEvent) -> list[str]:
    """The 【items】 of one 身分事項, in the order the certificate prints them."""
    items = [f"【{event.kind}日】{wareki(event.on)}"]
    if event.spouse_name is not None:
        items.append(f"【配偶者氏名】{event.spouse_name}")
    detail = event.detail.strip()
    items += [item.strip() for item in _ITEM.findall(detail)] or ([detail] if detail else [])
    if event.filed_on is not None:
        items.append(f"【届出日】{wareki(event.filed_on)}")
    if event.informant is not None:
        items.append(f"【届出人】{event.informant}")
    return items


def _event_lines(event: KosekiEvent) -> list[Line]:
    first, *rest = _event_items(event)
    return [label_value(f"　{event.kind}", first)] + [text_line(item, x=ITEM_X) for item in rest]


def _person_lines(person: KosekiPerson) -> list[Line]:
    lines = [
        heading("戸籍に記録されている者" + ("（筆頭者）" if person.is_hitto_sha else "")),
        label_value("【名】", given_name(person.name), size=12),
        label_value("【生年月日】", wareki(person.birth_date)),
    ]
    if person.father is not None:
        lines.append(label_value("【父】", person.father))
    if person.mother is not None:
        lines.append(label_value("【母】", person.mother))
    lines.append(label_value("【続柄】", person.relationship))
    if person.events:
        lines.append(heading("身分事項", size=9.5))
        for event in person.events:
            lines.extend(_event_lines(event))
    lines.append(rule())
    return lines


def build(content: CertificateContent) -> Layout:
    body = content.body
    if not isinstance(body, KosekiContent):
        raise TypeError("戸籍証明書 needs KosekiContent")
    zenbu = content.kind is CertificateKind.KOSEKI_ZENBU
    lines: list[Line] = [
        label_value("本籍", body.honseki, size=11),
        label_value("氏名", body.hitto_sha, size=11),
        rule(),
        heading("戸籍事項"),
        label_value("　戸籍編製", f"【編製日】{wareki(body.compiled_on)}"),
        rule(),
    ]
    for person in body.persons:
        lines.extend(_person_lines(person))
    return Layout(
        title="戸籍全部事項証明書" if zenbu else "戸籍個人事項証明書",
        subtitle="（全部事項証明）" if zenbu else "（個人事項証明）",
        lines=tuple(lines),
        certification=CERTIFY_ZENBU if zenbu else CERTIFY_KOJIN,
        continued=CONTINUED,
    )
