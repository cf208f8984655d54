"""The rules of the real service as one contract: what a person may order now, and the
certificate content and fee of an order (service.md §2, §3).

`menu_for` and `prepare_order` are the only entry points the transaction service calls;
they read current registry data in the caller's session and never write. Every refusal is
a `RuleViolation` with a stable code and messages a kiosk can show.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from certserver.db.repositories.registry import RegistryRepository
from certserver.services.rules.engine import build_menu, build_order
from certserver.services.rules.terms import (
    CertificateOffer,
    Menu,
    MunicipalityMenu,
    MunicipalityRole,
    Offer,
    OptionChoice,
    OrderRequest,
    PersonChoice,
    PreparedOrder,
    RuleViolation,
)

__all__ = [
    "CertificateOffer",
    "Menu",
    "MunicipalityMenu",
    "MunicipalityRole",
    "Offer",
    "OptionChoice",
    "OrderRequest",
    "PersonChoice",
    "PreparedOrder",
    "RuleViolation",
    "menu_for",
    "prepare_order",
]


def menu_for(session: Session, resident_id: str, now: datetime) -> Menu:
    """What the card holder `resident_id` may order at `now` (an aware datetime; the rules
    use its JST date and time): their 住所地 and each 本籍地 they registered with, every
    certificate offered there, and for anything not available now the code saying why.

    Raises RuleViolation when the holder may not use the service at all (resident_not_found,
    resident_moved_out, resident_deceased, dv_support_measure, change_pending,
    gaiji_in_record, same_day_move_in, under_15); ValueError for a naive `now`."""
    return build_menu(RegistryRepository(session), resident_id, now)


def prepare_order(session: Session, requester_id: str, order: OrderRequest, now: datetime) -> PreparedOrder:
    """Check `order` against every rule at `now` and build its content (with an empty
    certificate number and issued_on = the JST date of `now`) and the fee per copy.

    Raises RuleViolation with the first rule the order breaks (codes in
    certserver.refusals.MESSAGES); ValueError for a naive `now`."""
    from certserver.db.repositories.registry import RegistryRepository

    return build_order(RegistryRepository(session), requester_id, order, now)
