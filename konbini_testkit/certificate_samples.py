"""Synthetic certificate contents (fictional people of a fictional household in 取手市).

Test data, not part of the product: used by the tests, bench/documents_bench.py and
scripts/render_samples.py (docs/samples/), so the sample PDFs are built by code, never
edited by hand. Every name and number here is made up.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from functools import partial
from pathlib import Path

from certserver.documents.content import (
    CertificateContent,
    CertificateKind,
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
from certserver.documents.signing import SignerStore

ISSUER = Issuer(
    code="08217",
    name="取手市",
    prefecture="茨城県",
    mayor_title="取手市長",
    mayor_name="見本　一郎",
)
ADDRESS = "茨城県取手市寺田五丁目1番地の7　テスト荘101号"
HONSEKI = "茨城県取手市寺田五丁目1番地"
ISSUED_ON = date(2026, 11, 26)

HOUSEHOLD = (
    JuminhyoPerson(
        name="見本　太郎",
        name_kana="みほん　たろう",
        birth_date=date(1975, 4, 3),
        sex="男",
        became_resident_on=date(1975, 4, 3),
        address_since=date(2010, 6, 1),
        relationship="世帯主",
        honseki=HONSEKI,
        hitto_sha="見本　太郎",
        my_number="123456789018",
        previous_address="東京都千代田区試験町一丁目2番3号",
    ),
    JuminhyoPerson(
        name="見本　花子",
        name_kana="みほん　はなこ",
        birth_date=date(1978, 12, 24),
        sex="女",
        became_resident_on=date(2005, 5, 5),
        address_since=date(2010, 6, 1),
        relationship="妻",
        honseki=HONSEKI,
        hitto_sha="見本　太郎",
        my_number="234567890120",
    ),
    JuminhyoPerson(
        name="見本　一郎",
        name_kana="みほん　いちろう",
        birth_date=date(1989, 1, 8),
        sex="男",
        became_resident_on=date(2010, 6, 1),
        address_since=date(2010, 6, 1),
        relationship="子",
        honseki=HONSEKI,
        hitto_sha="見本　太郎",
        my_number="345678901231",
    ),
    JuminhyoPerson(
        name="スミス　アンナ",
        name_kana=None,
        birth_date=date(1999, 7, 30),
        sex="女",
        became_resident_on=date(2024, 4, 1),
        address_since=date(2024, 4, 1),
        relationship="同居人",
        my_number="456789012342",
        foreign=ForeignResidentItems(
            nationality="英国",
            residence_card_number="AB12345678CD",
            residence_status="留学",
            period_of_stay="2年",
            period_expires_on=date(2027, 3, 31),
            category="中長期在留者",
        ),
        tsusho="スミス　杏奈",
        western_dates=True,
    ),
)


def juminhyo(
    *,
    persons: tuple[JuminhyoPerson, ...] = HOUSEHOLD,
    whole_household: bool = True,
    setainushi: bool = True,
    honseki: bool = True,
    my_number: bool = False,
    foreign_items: bool = True,
    kind: CertificateKind = CertificateKind.JUMINHYO,
    number: str = "R8-000101",
) -> CertificateContent:
    """A 住民票の写し (or 記載事項証明書) with the given options applied as issuance would."""
    omitted: list[str] = []
    if not setainushi:
        omitted.append("世帯主・続柄")
    if not honseki:
        omitted.append("本籍・筆頭者")
    if not my_number:
        omitted.append("個人番号")
    chosen = tuple(
        replace(
            p,
            relationship=p.relationship if setainushi else None,
            honseki=p.honseki if honseki else None,
            hitto_sha=p.hitto_sha if honseki else None,
            my_number=p.my_number if my_number else None,
            foreign=p.foreign if foreign_items else None,
        )
        for p in persons
    )
    body = JuminhyoContent(
        address=ADDRESS,
        setainushi=HOUSEHOLD[0].name if setainushi else None,
        persons=chosen,
        whole_household=whole_household,
        omitted_items=tuple(omitted),
    )
    return CertificateContent(kind, number, ISSUED_ON, ISSUER, body, requester_serial="TEST-SERIAL")


def inkan(number: str = "R8-000102") -> CertificateContent:
    body = InkanContent(
        name="見本　太郎",
        name_kana="みほん　たろう",
        birth_date=date(1975, 4, 3),
        sex="男",
        address=ADDRESS,
        registration_number="第20100601号",
        seal_text="見本",
    )
    return CertificateContent(CertificateKind.INKAN, number, ISSUED_ON, ISSUER, body)


def tax(number: str = "R8-000103") -> CertificateContent:
    body = TaxContent(
        fiscal_year=2026,
        income_year=2025,
        name="見本　太郎",
        address=ADDRESS,
        birth_date=date(1975, 4, 3),
        total_income=4_760_000,
        salary_income=6_500_000,
        employment_income=4_760_000,
        deductions_total=1_480_000,
        taxable_income=3_280_000,
        municipal_tax=200_300,
        prefectural_tax=132_700,
        dependents=2,
    )
    return CertificateContent(CertificateKind.SHOTOKU_KAZEI, number, ISSUED_ON, ISSUER, body)


KOSEKI_PERSONS = (
    KosekiPerson(
        name="見本　太郎",
        birth_date=date(1975, 4, 3),
        father="見本　大介",
        mother="見本　幸子",
        relationship="長男",
        is_hitto_sha=True,
        events=(
            KosekiEvent(
                "出生",
                date(1975, 4, 3),
                "【出生地】茨城県取手市",
                filed_on=date(1975, 4, 10),
                informant="父",
            ),
            KosekiEvent("婚姻", date(2005, 5, 5), "", spouse_name="試験　花子"),
        ),
    ),
    KosekiPerson(
        name="見本　花子",
        birth_date=date(1978, 12, 24),
        father="試験　正男",
        mother="試験　和子",
        relationship="二女",
        events=(
            KosekiEvent(
                "出生",
                date(1978, 12, 24),
                "【出生地】千葉県柏市",
                filed_on=date(1979, 1, 5),
                informant="母",
            ),
            KosekiEvent(
                "婚姻",
                date(2005, 5, 5),
                "【従前戸籍】千葉県柏市試験町3番　試験　正男",
                spouse_name="見本　太郎",
            ),
        ),
    ),
    KosekiPerson(
        name="見本　一郎",
        birth_date=date(1989, 1, 8),
        father="見本　太郎",
        mother="見本　花子",
        relationship="長男",
        events=(
            KosekiEvent(
                "出生",
                date(1989, 1, 8),
                "【出生地】茨城県取手市",
                filed_on=date(1989, 1, 17),
                informant="父",
            ),
        ),
    ),
)


def koseki(
    *,
    zenbu: bool = True,
    persons: tuple[KosekiPerson, ...] = KOSEKI_PERSONS,
    number: str = "R8-000104",
) -> CertificateContent:
    body = KosekiContent(honseki=HONSEKI, hitto_sha="見本　太郎", compiled_on=date(2005, 5, 5), persons=persons)
    kind = CertificateKind.KOSEKI_ZENBU if zenbu else CertificateKind.KOSEKI_KOJIN
    return CertificateContent(kind, number, ISSUED_ON, ISSUER, body)


def fuhyo(number: str = "R8-000105") -> CertificateContent:
    body = FuhyoContent(
        honseki=HONSEKI,
        hitto_sha="見本　太郎",
        persons=(
            FuhyoPerson(
                "見本　太郎",
                date(1975, 4, 3),
                (
                    FuhyoEntry("東京都千代田区試験町一丁目2番3号", date(2005, 5, 5)),
                    FuhyoEntry(ADDRESS, date(2010, 6, 1)),
                ),
            ),
            FuhyoPerson("見本　花子", date(1978, 12, 24), (FuhyoEntry(ADDRESS, date(2010, 6, 1)),)),
        ),
    )
    return CertificateContent(CertificateKind.KOSEKI_FUHYO, number, ISSUED_ON, ISSUER, body)


def one_of_each() -> dict[str, CertificateContent]:
    """One sample per certificate type, keyed by a file stem."""
    return {
        "juminhyo": juminhyo(my_number=True),
        "kisaijiko": juminhyo(
            kind=CertificateKind.KISAIJIKO,
            persons=HOUSEHOLD[:1],
            whole_household=False,
            number="R8-000106",
        ),
        "inkan": inkan(),
        "shotoku_kazei": tax(),
        "koseki_zenbu": koseki(),
        "koseki_kojin": koseki(zenbu=False, persons=KOSEKI_PERSONS[2:], number="R8-000107"),
        "koseki_fuhyo": fuhyo(),
    }


def demo_signers(ca_dir: Path, issuer: Issuer = ISSUER) -> SignerStore:
    """A fresh test document CA in `ca_dir` (certserver.pki.ca, as `certserver init` makes it)
    and the signing material of `issuer`: for samples, benchmarks and tests.

    Raises certserver.pki.ca.CaExistsError if `ca_dir` already holds a CA.
    """
    from certserver.pki.ca import CaBundle

    ca = CaBundle.create(ca_dir)
    store = SignerStore.open(ca_dir)
    store.ensure_signer(
        issuer.code,
        issuer.name,
        partial(
            ca.issue_document_signing_certificate,
            municipality_code=issuer.code,
            municipality_name=issuer.name,
        ),
        chain=(ca.document_ca.cert,),
    )
    return store
