"""What the kiosk knows of the issuing service's data: plain immutable values.

The kiosk reaches the service only over HTTP, so these mirror the API's JSON (client.py
parses it) rather than importing the service's own classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class MunicipalityRole(StrEnum):
    JUSHOCHI = "jushochi"  # 住所地: where the person lives
    HONSEKICHI = "honsekichi"  # 本籍地: family-register domicile (after 利用登録)


@dataclass(frozen=True)
class PersonChoice:
    """Someone the requester may name on a certificate (ids are opaque to the kiosk)."""

    person_id: str
    name: str
    relationship: str  # 続柄: 本人 / 妻 / 長男 ...
    is_requester: bool


@dataclass(frozen=True)
class OptionChoice:
    """An optional item such as 世帯主・続柄 (code `setainushi`)."""

    code: str
    label_ja: str
    label_en: str


@dataclass(frozen=True)
class Offer:
    """One certificate type a municipality offers this person now."""

    kind: str  # API code: juminhyo, inkan, shotoku_kazei, koseki_zenbu ... (i18n `kind.<code>`)
    fee_yen: int  # per copy
    max_copies: int
    persons: tuple[PersonChoice, ...] = ()
    options: tuple[OptionChoice, ...] = ()
    whole_household_allowed: bool = False
    available: bool = True
    unavailable_reason: str | None = None


@dataclass(frozen=True)
class Municipality:
    code: str
    name: str
    role: MunicipalityRole
    open: bool
    closed_reason: str | None
    offers: tuple[Offer, ...]


@dataclass(frozen=True)
class Menu:
    """What the authenticated person may order, per municipality."""

    municipalities: tuple[Municipality, ...]


@dataclass(frozen=True)
class Order:
    municipality_code: str
    role: MunicipalityRole
    kind: str
    person_ids: tuple[str, ...] = ()  # empty: the requester only
    whole_household: bool = False
    options: frozenset[str] = field(default_factory=frozenset)
    copies: int = 1


@dataclass(frozen=True)
class DocumentRef:
    """A document the service prepared for this transaction, as the order listed it."""

    document_id: str
    sha256: str  # hex digest of the PDF bytes
    pages: int = 1


@dataclass(frozen=True)
class OrderAccepted:
    """The service prepared the documents; they are released only after payment."""

    fee_yen: int  # total for every copy
    copies: int
    certificate_numbers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Document:
    """A downloaded PDF, with the transaction the service says it belongs to."""

    ref: DocumentRef
    transaction_id: str
    pdf: bytes = field(repr=False)
