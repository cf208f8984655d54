"""The rules of the real service as one contract: what a person may order now, and the
certificate content and fee of an order (service.md §2, §3).

`menu_for` and `prepare_order` are the only entry points the transaction service calls;
they read current registry data in the caller's session and never write. Every refusal is
a `RuleViolation` with a stable code and messages a kiosk can show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from certserver.documents.content import CertificateContent, CertificateKind

# The menu's types are the kiosk API's contract: the rules build the answer from them.
from kioskapi.models import (
    Menu,
    MunicipalityMenu,
    MunicipalityRole,
    Offer,
    OptionChoice,
    PersonChoice,
)

__all__ = [
    "Menu", "MunicipalityMenu", "MunicipalityRole", "Offer", "OptionChoice", "OrderRequest", "PersonChoice",
    "PreparedOrder", "RuleViolation", "menu_for", "prepare_order",
]


class RuleViolation(Exception):
    """An order the rules refuse. `code` is stable (API error code), messages are for people."""

    def __init__(self, code: str, message_ja: str, message_en: str) -> None:
        super().__init__(f"{code}: {message_en}")
        self.code = code
        self.message_ja = message_ja
        self.message_en = message_en


@dataclass(frozen=True)
class OrderRequest:
    """An order as the rules check it. Not the API's `kioskapi.models.Order`: that one bounds
    the request's shape (copies 1-99 ...), this one carries whatever came and the rules
    refuse what they must (copies 0 is `invalid_copies`, a rule, not a shape error)."""

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
    certserver.services.rules.violations.MESSAGES); ValueError for a naive `now`."""
    from certserver.db.repositories.registry import RegistryRepository
    from certserver.services.rules.engine import build_order

    return build_order(RegistryRepository(session), requester_id, order, now)
