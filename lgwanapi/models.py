"""Request and answer bodies of the LGWAN link, /lgwan/v1 (docs/lgwan.md is the prose
version).

The centre calls a municipality with the card's certificate serial and the municipality
that applied for the card (from the JPKI record); the municipality alone knows whose card
that is. Every call carries a request id: a repeated delivery of the same call gets the
same answer (an order is numbered and rendered once), and a different call under a used id
is refused. Requests are strict and bounded, like the kiosk API's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from kioskapi.models import CertificateKind, Menu, Order, OrderSummary

MunicipalityCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{5,6}$")]
# A certificate serial as the JPKI service writes it (upper-case hex).
CardSerial = Annotated[str, StringConstraints(pattern=r"^[0-9A-F]{1,64}$")]
RequestId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,64}$")]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CardHolder(_Strict):
    """Whose certificate: the serial, and the municipality the JPKI record says applied
    for it (the holder's 住所地)."""

    card_serial: CardSerial
    applied_by: MunicipalityCode


class MenuCall(_Strict):
    request_id: RequestId
    card: CardHolder
    at: Annotated[datetime, AwareDatetime]


class MenuAnswer(_Strict):
    menu: Menu


class OrderCall(_Strict):
    """Check an order against the municipality's rules, number it, render and sign each copy."""

    request_id: RequestId
    card: CardHolder
    order: Order
    at: Annotated[datetime, AwareDatetime]


class RenderedCopy(BaseModel):
    """One copy: its certificate number and the signed PDF (URL-safe base64 on the wire)."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    certificate_number: str
    kind: CertificateKind
    content_sha256: Sha256Hex
    pdf_sha256: Sha256Hex
    pdf: bytes


class OrderAnswer(BaseModel):
    summary: OrderSummary
    copies: list[RenderedCopy]


class OutcomeCall(_Strict):
    """What became of an order's copies: printed (issued) or not (withdrawn: the transaction
    ended unprinted, or the kiosk said printing failed). A later call for the same order
    replaces an earlier one (a kiosk's late report)."""

    request_id: RequestId
    order_request_id: RequestId
    issued: tuple[str, ...] = Field(default=(), max_length=99)
    withdrawn: tuple[str, ...] = Field(default=(), max_length=99)
    at: Annotated[datetime, AwareDatetime]


class OutcomeAnswer(BaseModel):
    outcome: str  # issued / withdrawn / partly: as the municipality now records the order


class LgwanHealth(BaseModel):
    status: str
    municipalities: list[str]  # the codes this server answers for
