"""戸籍の附票の写し: for each person in the 戸籍, the addresses recorded and since when."""

from __future__ import annotations

from certserver.documents.content import CertificateContent, FuhyoContent
from certserver.documents.layouts.base import Layout, Line, label_value, label_values, rule, wareki

CERTIFY = "この写しは、戸籍の附票の原本と相違ないことを証明する。"


def build(content: CertificateContent) -> Layout:
    body = content.body
    if not isinstance(body, FuhyoContent):
        raise TypeError("戸籍の附票の写し needs FuhyoContent")
    lines: list[Line] = [
        label_value("本籍", body.honseki, size=11),
        label_value("筆頭者", body.hitto_sha, size=11),
        rule(),
    ]
    for person in body.persons:
        lines.append(label_values(("氏名", person.name), ("生年月日", wareki(person.birth_date))))
        for entry in person.entries:
            lines.append(label_value("住所", entry.address))
            lines.append(label_value("住所を定めた年月日", wareki(entry.since)))
        lines.append(rule())
    return Layout(title="戸籍の附票の写し", lines=tuple(lines), certification=CERTIFY)
