"""The rules of the real service as one contract: what a person may order now, and the
certificate content and fee of an order (service.md §2, §3).

`menu_for` and `prepare_order` are the only entry points the transaction service calls;
they read current registry data in the caller's session and never write. Every refusal is
a `RuleViolation` with a stable code and messages a kiosk can show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy.orm import Session

from certserver.documents.content import CertificateContent, CertificateKind
from certserver.refusals import CodedRefusal


class MunicipalityRole(StrEnum):
    JUSHOCHI = "jushochi"  # 住所地: where the person lives
    HONSEKICHI = "honsekichi"  # 本籍地: family-register domicile (after 利用登録)


class RuleViolation(CodedRefusal):
    """An order the rules refuse. `code` is stable (API error code), messages are for people."""


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


# The rules import the types above, so they are imported when first called, not at the top.

def menu_for(session: Session, resident_id: str, now: datetime) -> Menu:
    """What the card holder `resident_id` may order at `now` (an aware datetime; the rules
    use its JST date and time): their 住所地 and each 本籍地 they registered with, every
    certificate offered there, and for anything not available now the code saying why.

    Raises RuleViolation when the holder may not use the service at all (resident_not_found,
    resident_moved_out, resident_deceased, dv_support_measure, change_pending,
    gaiji_in_record, same_day_move_in, under_15); ValueError for a naive `now`."""
    from certserver.db.repositories.registry import RegistryRepository
    from certserver.services.rules.engine import build_menu

    return build_menu(RegistryRepository(session), resident_id, now)


def prepare_order(session: Session, requester_id: str, order: OrderRequest, now: datetime) -> PreparedOrder:
    """Check `order` against every rule at `now` and build its content (with an empty
    certificate number and issued_on = the JST date of `now`) and the fee per copy.

    Raises RuleViolation with the first rule the order breaks (codes in
    certserver.refusals.MESSAGES); ValueError for a naive `now`."""
    from certserver.db.repositories.registry import RegistryRepository
    from certserver.services.rules.engine import build_order

    return build_order(RegistryRepository(session), requester_id, order, now)
