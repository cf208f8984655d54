"""The terms of the ordering contract (certserver.services.ordering): a menu, an order, a
prepared order and the refusal of one. The rules build them; this module imports no rule, so
the rules and the contract that composes them depend one way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from certserver.documents.content import CertificateContent, CertificateKind
from certserver.refusals import CodedRefusal

# The menu's types are the kiosk API's contract (kioskapi): the rules build the answer from them.
from kioskapi.models import (
    Menu,
    MunicipalityMenu,
    MunicipalityRole,
    Offer,
    OptionChoice,
    PersonChoice,
)

CertificateOffer = Offer  # the rules' name for one certificate on the menu

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
]


class RuleViolation(CodedRefusal):
    """An order the rules refuse. `code` is stable (API error code), messages are for people."""


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
