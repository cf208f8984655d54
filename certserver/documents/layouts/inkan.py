"""印鑑登録証明書: the registered seal's impression (印影), generated from its characters,
with the registrant's identity."""

from __future__ import annotations

from certserver.documents.content import CertificateContent, InkanContent
from certserver.documents.fonts import LABEL
from certserver.documents.layouts.base import (
    Cell,
    Layout,
    Line,
    label_value,
    label_values,
    rule,
    wareki,
)

CERTIFY = "この写しは、登録されている印影と相違ないことを証明する。"
SEAL_LINE_HEIGHT = 34.0  # mm


def build(content: CertificateContent) -> Layout:
    body = content.body
    if not isinstance(body, InkanContent):
        raise TypeError("印鑑登録証明書 needs InkanContent")
    lines = [
        Line(
            (Cell(2, "印影", size=9, font=LABEL),),
            height=SEAL_LINE_HEIGHT,
            seal_text=body.seal_text,
        ),
        rule(),
        label_value("登録番号", body.registration_number),
    ]
    if body.name_kana:
        lines.append(label_value("ふりがな", body.name_kana, size=8.5))
    lines += [
        label_value("氏名", body.name, size=12),
        label_values(("生年月日", wareki(body.birth_date)), ("性別", body.sex)),
        label_value("住所", body.address, size=11),
        rule(),
    ]
    return Layout(title="印鑑登録証明書", lines=tuple(lines), certification=CERTIFY)
