"""Request and response bodies of the kiosk API, /api/v1 (docs/api.md is the prose version).

The service builds its answers from these and declares them in its OpenAPI document; the
kiosk parses the answers with them. The menu's parts are immutable pydantic dataclasses
(built positionally, like the plain dataclasses they replaced); the envelopes are models.

The service always sends every field. A field a kiosk does not need to act on has a
default, so a reader may do without it; the OpenAPI document (serialization schemas) still
lists every field as required, because the service always sends it.
Requests are strict (no coercion of "1" to 1, no unknown fields) and bounded, so any odd
input is a 422, never a 500.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
    field_serializer,
)
from pydantic.dataclasses import dataclass


class MunicipalityRole(StrEnum):
    JUSHOCHI = "jushochi"  # 住所地: where the person lives
    HONSEKICHI = "honsekichi"  # 本籍地: family-register domicile (after 利用登録)


class CertificateKind(StrEnum):
    """Certificate types a kiosk can issue (service.md §2). Values are API codes."""

    JUMINHYO = "juminhyo"  # 住民票の写し
    KISAIJIKO = "kisaijiko"  # 住民票記載事項証明書
    INKAN = "inkan"  # 印鑑登録証明書
    SHOTOKU_KAZEI = "shotoku_kazei"  # 所得・課税証明書
    KOSEKI_ZENBU = "koseki_zenbu"  # 戸籍全部事項証明書
    KOSEKI_KOJIN = "koseki_kojin"  # 戸籍個人事項証明書
    KOSEKI_FUHYO = "koseki_fuhyo"  # 戸籍の附票の写し

    @property
    def title_ja(self) -> str:
        return _TITLES[self]


_TITLES = {
    CertificateKind.JUMINHYO: "住民票の写し",
    CertificateKind.KISAIJIKO: "住民票記載事項証明書",
    CertificateKind.INKAN: "印鑑登録証明書",
    CertificateKind.SHOTOKU_KAZEI: "所得・課税証明書",
    CertificateKind.KOSEKI_ZENBU: "戸籍全部事項証明書",
    CertificateKind.KOSEKI_KOJIN: "戸籍個人事項証明書",
    CertificateKind.KOSEKI_FUHYO: "戸籍の附票の写し",
}

# Answers: lax (the kiosk reads what the service wrote), every field required in the
# serialization schema (see the module docstring).
_ANSWER = ConfigDict(json_schema_serialization_defaults_required=True)
# Requests: strict per field, not per model: FastAPI validates the parsed JSON in Python
# mode, where a strict model would refuse "juminhyo" for an enum.
_REQUEST = ConfigDict(extra="forbid", frozen=True)

PersonId = Annotated[StrictStr, StringConstraints(min_length=1, max_length=64)]
OptionCode = Annotated[StrictStr, StringConstraints(min_length=1, max_length=40)]


# -- the menu: what a card holder may order now -----------------------------------------


@dataclass(frozen=True, config=_ANSWER)
class PersonChoice:
    """Someone the requester may name on this certificate."""

    person_id: str  # residents.id or koseki person id; opaque to the kiosk
    name: str
    relationship: str  # 続柄: 本人 / 妻 / 長男 ...
    is_requester: bool


@dataclass(frozen=True, config=_ANSWER)
class OptionChoice:
    """An optional item (住民票: setainushi 世帯主・続柄, honseki, my_number, foreign_items ...)."""

    code: str
    label_ja: str
    label_en: str


@dataclass(frozen=True, config=_ANSWER)
class Offer:
    """One certificate type a municipality offers this person now."""

    kind: CertificateKind
    fee_yen: int  # per copy, from the dated fee table for today
    max_copies: int
    persons: tuple[PersonChoice, ...] = ()  # empty when the certificate is only about the requester
    options: tuple[OptionChoice, ...] = ()
    whole_household_allowed: bool = False  # 世帯全員 (住民票) / 全部事項 (戸籍)
    available: bool = True  # False outside its hours; then `unavailable_reason` says why
    unavailable_reason: str | None = None  # a rule's code, e.g. "outside_hours"
    fiscal_year: int | None = None  # 所得・課税証明書: the (only) 年度 on offer
    unavailable_message_ja: str | None = None  # what the kiosk may say for `unavailable_reason`
    unavailable_message_en: str | None = None


@dataclass(frozen=True, config=_ANSWER)
class MunicipalityMenu:
    """A municipality where the person may order, and what it offers them."""

    code: str
    name: str
    role: MunicipalityRole
    open: bool  # False when stopped, closed, or out of hours
    closed_reason: str | None
    offers: tuple[Offer, ...]
    name_en: str = ""
    closed_message_ja: str | None = None  # what the kiosk may say for `closed_reason`
    closed_message_en: str | None = None


@dataclass(frozen=True, config=_ANSWER)
class Menu:
    """What the authenticated card holder may order, per municipality."""

    # First on the wire, keyword-only (and optional to a reader): the kiosk never needs it.
    resident_id: str = Field(default="", kw_only=True)
    municipalities: tuple[MunicipalityMenu, ...]


# -- requests ---------------------------------------------------------------------------


class AuthenticateRequest(BaseModel):
    model_config = _REQUEST

    certificate: StrictStr = Field(
        min_length=4, max_length=16_384, description="the card's user-authentication certificate, base64 DER"
    )
    signature: StrictStr = Field(
        min_length=4, max_length=2_048, description="the card's signature over the challenge bytes, base64"
    )


class Order(BaseModel):
    """The order a kiosk places (POST .../order)."""

    model_config = _REQUEST

    municipality_code: StrictStr = Field(pattern=r"^[0-9]{5,6}$")
    role: MunicipalityRole
    kind: CertificateKind
    person_ids: tuple[PersonId, ...] = Field(default=(), max_length=30)  # empty: the requester only
    whole_household: StrictBool = False
    options: frozenset[OptionCode] = Field(default=frozenset(), max_length=20)
    copies: StrictInt = Field(default=1, ge=1, le=99)
    fiscal_year: StrictInt | None = Field(default=None, ge=1900, le=2200)  # None: the latest on offer

    @field_serializer("options")
    def _sorted_options(self, options: frozenset[str]) -> list[str]:
        # A set has no order; the same order must give the same JSON (Idempotency-Key).
        return sorted(options)


class Payment(BaseModel):
    model_config = _REQUEST

    amount_yen: StrictInt = Field(ge=0, le=10_000_000)


# -- answers ----------------------------------------------------------------------------


class Health(BaseModel):
    status: str


class StartedResponse(BaseModel):
    transaction_id: str
    state: str
    challenge: str  # base64 of 32 random bytes: the card signs these bytes
    challenge_expires_at: datetime
    expires_at: datetime


class OrderSummary(BaseModel):
    """What was ordered, as the transaction's status shows it while the transaction is open."""

    model_config = _ANSWER

    municipality_code: str = ""
    issuer_name: str = ""
    role: MunicipalityRole | None = None
    kind: CertificateKind | None = None
    title_ja: str = ""
    persons: list[str] = []  # names on the certificate
    copies: int
    fee_per_copy_yen: int = 0
    fee_total_yen: int = 0
    certificate_numbers: list[str] = []  # one per copy


class TransactionStatus(BaseModel):
    transaction_id: str
    state: str
    expires_at: datetime
    fee_total_yen: int | None = None
    paid_yen: int | None = None
    refunded_yen: int | None = None
    order: OrderSummary | None = None


class AuthenticatedResponse(TransactionStatus):
    menu: Menu


class MenuResponse(BaseModel):
    transaction_id: str
    menu: Menu


class OrderedResponse(TransactionStatus):
    documents: int  # how many documents (copies) were rendered


class DocumentInfo(BaseModel):
    model_config = _ANSWER

    document_id: str
    certificate_number: str = ""
    kind: str = ""
    copy_index: int = 0
    sha256: str  # of the PDF bytes: the kiosk checks it before printing
    size: int = 0


class DocumentList(BaseModel):
    transaction_id: str
    documents: list[DocumentInfo]


class ErrorDetail(BaseModel):
    """`code` is the contract; the messages are for the person at the kiosk."""

    code: str
    message_ja: str = ""
    message_en: str = ""
    # Request-shape errors only: where and what, never the input itself.
    fields: list[dict[str, Any]] | None = None


class ErrorBody(BaseModel):
    """Every error's body: {"error": {"code", "message_ja", "message_en"}}."""

    error: ErrorDetail
