"""所得・課税証明書 for one fiscal year (令和8年度, on the income of 令和7年)."""

from __future__ import annotations

from certserver.documents.content import CertificateContent, TaxContent
from certserver.documents.layouts.base import (
    Layout,
    heading,
    label_value,
    label_values,
    rule,
    wareki,
    yen,
)
from certserver.documents.wareki import calendar_year_wareki, fiscal_year_wareki

CERTIFY = "上記のとおり証明する。"


def build(content: CertificateContent) -> Layout:
    body = content.body
    if not isinstance(body, TaxContent):
        raise TypeError("所得・課税証明書 needs TaxContent")
    fiscal = fiscal_year_wareki(body.fiscal_year)
    income = calendar_year_wareki(body.income_year)
    lines = [
        label_value("年度", f"{fiscal}（{income}分所得）"),
        label_value("住所", body.address, size=11),
        label_value("氏名", body.name, size=12),
        label_value("生年月日", wareki(body.birth_date)),
        rule(),
        heading(f"所得の状況（{income}分）"),
        label_values(("給与収入", yen(body.salary_income)), ("給与所得", yen(body.employment_income))),
        label_value("総所得金額", yen(body.total_income)),
        label_values(("所得控除合計", yen(body.deductions_total)), ("扶養人数", f"{body.dependents}人")),
        label_value("課税標準額", yen(body.taxable_income)),
        rule(),
        heading(f"課税の状況（{fiscal}）"),
        label_values(("市町村民税", yen(body.municipal_tax)), ("道府県民税", yen(body.prefectural_tax))),
        label_value("年税額合計", yen(body.municipal_tax + body.prefectural_tax)),
        rule(),
    ]
    return Layout(
        title="所得・課税証明書",
        subtitle=f"（{fiscal}）",
        lines=tuple(lines),
        certification=CERTIFY,
    )
