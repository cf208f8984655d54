"""What the kiosk knows of the issuing service's data.

The menu and the order are the kiosk API's contract (kioskapi.models), the very types the
service builds its answers from: the kiosk parses the answers with them and reaches the
service only over HTTP. The rest are the kiosk's own digests of the answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kioskapi.models import (
    Menu,
    MunicipalityMenu,
    MunicipalityRole,
    Offer,
    OptionChoice,
    Order,
    PersonChoice,
)

# The kiosk's word for a municipality on its menu.
Municipality = MunicipalityMenu

__all__ = [
    "Document",
    "DocumentRef",
    "Menu",
    "Municipality",
    "MunicipalityRole",
    "Offer",
    "OptionChoice",
    "Order",
    "OrderAccepted",
    "PersonChoice",
]


@dataclass(frozen=True)
class DocumentRef:
    """A document the service prepared for this transaction, as the order listed it."""

    document_id: str
    sha256: str  # hex digest of the PDF bytes
    pages: int = 1  # counted by the kiosk from the PDF it downloaded


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
