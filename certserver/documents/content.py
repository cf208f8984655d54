"""What a certificate says: the contract between issuance and rendering.

The issuance service (services/) decides, from current registry data and the rules of the
real service, which persons and which items a certificate carries, and builds one of these
immutable values. The renderer (documents/) draws exactly what is here and nothing else:
an item that is None is not printed. 住民票コード has no field, so it can never be printed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime

# The kinds are API codes (the kiosk API's contract); re-exported here for the documents.
from kioskapi.models import CertificateKind


@dataclass(frozen=True)
class Issuer:
    """The municipality that certifies the document."""

    code: str  # 全国地方公共団体コード, 5 digits without the check digit (e.g. "08217")
    name: str  # 取手市
    prefecture: str  # 茨城県
    mayor_title: str  # 取手市長
    mayor_name: str


@dataclass(frozen=True)
class ForeignResidentItems:
    """外国人住民 items on a 住民票 (only when asked and the person is a foreign resident)."""

    nationality: str  # 国籍・地域
    residence_card_number: str | None  # 在留カード等番号
    residence_status: str | None  # 在留資格
    period_of_stay: str | None  # 在留期間
    period_expires_on: date | None  # 在留期間の満了の日
    category: str | None = None  # 住民基本台帳法 第30条の45 区分: 中長期在留者, 特別永住者 ...


@dataclass(frozen=True)
class JuminhyoPerson:
    """One person on a 住民票の写し / 住民票記載事項証明書. None = not printed."""

    name: str  # 氏名 (surname + U+3000 + given name)
    name_kana: str | None  # ふりがな
    birth_date: date
    sex: str  # 男 / 女
    became_resident_on: date  # 住民となった年月日
    address_since: date  # 住所を定めた年月日
    relationship: str | None = None  # 続柄 (only with 世帯主・続柄)
    honseki: str | None = None  # 本籍 (only with 本籍・筆頭者, Japanese nationals)
    hitto_sha: str | None = None  # 筆頭者
    my_number: str | None = None  # 個人番号 (only where the municipality allows and asked)
    previous_address: str | None = None  # 前住所
    foreign: ForeignResidentItems | None = None
    tsusho: str | None = None  # 通称 of a foreign resident, printed with the name where registered
    western_dates: bool = False  # a foreign resident's dates are printed in the Western calendar


@dataclass(frozen=True)
class JuminhyoContent:
    """住民票の写し or 住民票記載事項証明書 (kind says which)."""

    address: str  # 住所
    setainushi: str | None  # 世帯主 name (only with 世帯主・続柄)
    persons: tuple[JuminhyoPerson, ...]
    whole_household: bool  # 世帯全員 or 一部
    omitted_items: tuple[str, ...] = ()  # 省略事項 the page must name ("本籍・筆頭者", ...)


@dataclass(frozen=True)
class InkanContent:
    """印鑑登録証明書."""

    name: str
    name_kana: str | None
    birth_date: date
    sex: str
    address: str
    registration_number: str  # 登録番号
    seal_text: str  # the characters engraved on the registered seal (image is generated)


@dataclass(frozen=True)
class TaxContent:
    """所得・課税証明書 for one fiscal year (令和N年度, on the income of the previous year)."""

    fiscal_year: int  # 年度 (Gregorian, e.g. 2026 = 令和8年度)
    income_year: int  # 所得の年 (fiscal_year - 1)
    name: str
    address: str  # 住所 on 1 January of the fiscal year
    birth_date: date
    total_income: int  # 総所得金額 (yen)
    salary_income: int  # 給与収入
    employment_income: int  # 給与所得 (給与収入 less the 給与所得控除 of the income year)
    deductions_total: int  # 所得控除合計
    taxable_income: int  # 課税標準額
    municipal_tax: int  # 市町村民税 所得割+均等割
    prefectural_tax: int  # 道府県民税
    dependents: int  # 扶養人数


@dataclass(frozen=True)
class KosekiEvent:
    """A 身分事項 line: 出生, 婚姻, 転籍 ..."""

    kind: str  # 出生 / 婚姻 / 入籍 / 転籍 ...
    on: date
    detail: str  # further 【item】 text such as 【出生地】茨城県取手市 or 【従前戸籍】...
    spouse_name: str | None = None  # 【配偶者氏名】 of a 婚姻: the spouse's name at the marriage
    filed_on: date | None = None  # 【届出日】
    informant: str | None = None  # 【届出人】: 父, 母, 同居者 ...


@dataclass(frozen=True)
class KosekiPerson:
    """One person in a 戸籍."""

    name: str
    birth_date: date
    father: str | None
    mother: str | None
    relationship: str  # 続柄: 長男, 長女, 妻 ...
    events: tuple[KosekiEvent, ...] = ()
    is_hitto_sha: bool = False


@dataclass(frozen=True)
class KosekiContent:
    """戸籍全部事項証明書 (all persons) or 戸籍個人事項証明書 (the chosen persons)."""

    honseki: str  # 本籍
    hitto_sha: str  # 筆頭者氏名
    compiled_on: date  # 戸籍編製日 (戸籍事項)
    persons: tuple[KosekiPerson, ...]


@dataclass(frozen=True)
class FuhyoEntry:
    """A 戸籍の附票 line: an address and since when."""

    address: str
    since: date


@dataclass(frozen=True)
class FuhyoPerson:
    name: str
    birth_date: date
    entries: tuple[FuhyoEntry, ...]


@dataclass(frozen=True)
class FuhyoContent:
    """戸籍の附票の写し."""

    honseki: str
    hitto_sha: str
    persons: tuple[FuhyoPerson, ...]


Body = JuminhyoContent | InkanContent | TaxContent | KosekiContent | FuhyoContent


@dataclass(frozen=True)
class CertificateContent:
    """Everything one certificate document says."""

    kind: CertificateKind
    certificate_number: str  # unique per issuer, printed and in the QR code
    issued_on: date  # JST date of issue
    issuer: Issuer
    body: Body
    requester_serial: str = field(default="", compare=False)  # card cert serial, never printed
    # When the municipality signs it (the PDF signature's time): the service's clock, which a
    # demo may pretend, not the host's. Not certified content: the date printed is issued_on.
    signed_at: datetime | None = field(default=None, compare=False)

    def subject_names(self) -> tuple[str, ...]:
        """The names of every person the document is about (tests check these)."""
        body = self.body
        if isinstance(body, JuminhyoContent):
            return tuple(p.name for p in body.persons)
        if isinstance(body, (InkanContent, TaxContent)):
            return (body.name,)
        if isinstance(body, (KosekiContent, FuhyoContent)):
            return tuple(p.name for p in body.persons)
        raise TypeError(type(body))

    def canonical_json(self) -> bytes:
        """A stable serialisation of the certified content (excluding the requester)."""
        data = asdict(self)
        data.pop("requester_serial", None)
        data.pop("signed_at", None)
        return json.dumps(data, ensure_ascii=False, sort_keys=True, default=str, separators=(",", ":")).encode()

    def content_hash(self) -> bytes:
        """SHA-256 of the canonical content: what the QR code and the audit log keep."""
        return hashlib.sha256(self.canonical_json()).digest()
