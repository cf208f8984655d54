"""戸籍全部事項証明書 (every person in the 戸籍) and 戸籍個人事項証明書 (the chosen persons),
in the computerised format: 本籍・氏名, 戸籍事項, then one block per recorded person."""

from __future__ import annotations

from certserver.documents.content import (
    CertificateContent,
    CertificateKind,
    KosekiContent,
    KosekiPerson,
)
from certserver.documents.layouts.base import (
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


def _person_lines(person: KosekiPerson) -> list[Line]:
    lines = [
        heading("戸籍に記録されている者" + ("（筆頭者）" if person.is_hitto_sha else "")),
        label_value("【氏名】", person.name, size=12),
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
            lines.append(label_value(f"　{event.kind}", f"【{event.kind}日】{wareki(event.on)}"))
            if event.detail:
                lines.append(text_line(event.detail, x=40))
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
    )
