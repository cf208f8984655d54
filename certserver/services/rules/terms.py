"""The terms of the ordering contract (certserver.services.ordering): a menu, an order, a
prepared order and the refusal of one. The rules build them; this module imports no rule, so
the rules and the contract that composes them depend one way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from certserver.documents.content import CertificateContent, CertificateKind


class MunicipalityRole(StrEnum):
    JUSHOCHI = "jushochi"  # 住所地: where the person lives
    HONSEKICHI = "honsekichi"  # 本籍地: family-register domicile (after 利用登録)


class RuleViolation(Exception):
    """An order the rules refuse. `code` is stable (API error code), messages are for people."""

    def __init__(self, code: str, message_ja: str, message_en: str) -> None:
        super().__init__(f"{code}: {message_en}")
        self.code = code
        self.message_ja = message_ja
        self.message_en = message_en


@dataclass(frozen=True)
class PersonChoice:
    """Someone the requester may name on this certificate."""

    person_id: str  # residents.id or koseki person id; opaque to the kiosk
    name: str
    relationship: str  # 本人 / 妻 / 長男 ...
    is_requester: bool


@dataclass(frozen=True)
class OptionChoice:
    """An optional item (住民票: setainushi, honseki, my_number, foreign_items ...)."""

    code: str
    label_ja: str
    label_en: str


@dataclass(frozen=True)
class CertificateOffer:
    kind: CertificateKind
    fee_yen: int  # per copy, from the dated fee table for today
    max_copies: int
    persons: tuple[PersonChoice, ...]  # empty when the certificate is only about the requester
    options: tuple[OptionChoice, ...]
    whole_household_allowed: bool  # 世帯全員 (住民票) / 全部事項 (戸籍)
    available: bool  # False outside its hours; then `unavailable_reason` says why
    unavailable_reason: str | None = None  # a RuleViolation code, e.g. "outside_hours"
    fiscal_year: int | None = None  # 所得・課税証明書: the (only) 年度 on offer
    unavailable_message_ja: str | None = None  # what the kiosk says for `unavailable_reason`
    unavailable_message_en: str | None = None


@dataclass(frozen=True)
class MunicipalityMenu:
    code: str
    name: str
    role: MunicipalityRole
    open: bool  # False when stopped, closed, or out of hours
    closed_reason: str | None
    offers: tuple[CertificateOffer, ...]
    name_en: str = ""
    closed_message_ja: str | None = None  # what the kiosk says for `closed_reason`
    closed_message_en: str | None = None


@dataclass(frozen=True)
class Menu:
    resident_id: str
    municipalities: tuple[MunicipalityMenu, ...]


@dataclass(frozen=True)
class OrderRequest:
    municipality_code: str
    role: MunicipalityRole
    kind: CertificateKind
    person_ids: tuple[str, ...] = ()  # empty = the requester only
    whole_household: bool = False
    options: frozenset[str] = field(default_factory=frozenset)
    copies: int = 1
    fiscal_year: int | None = None  # 所得・課税証明書: None = the latest year on offer


@dataclass(frozen=True)
class PreparedOrder:
    content: CertificateContent  # with an empty certificate_number; the issuer numbers it
    copies: int
    fee_per_copy_yen: int

    @property
    def total_fee_yen(self) -> int:
        return self.copies * self.fee_per_copy_yen
