"""Request and response bodies of the kiosk API (JSON; docs/api.md is the prose version).

Requests are strict (no coercion of "1" to 1, no unknown fields) and bounded (string
lengths, list sizes, number ranges), so any odd input is a 422, never a 500.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
)

from certserver.documents.content import CertificateKind
from certserver.services.ordering import MunicipalityRole

# Strict per field, not per model: FastAPI validates the parsed JSON in Python mode, where a
# strict model would refuse "juminhyo" for an enum.
_STRICT = ConfigDict(extra="forbid")

PersonId = Annotated[StrictStr, StringConstraints(min_length=1, max_length=64)]
OptionCode = Annotated[StrictStr, StringConstraints(min_length=1, max_length=40)]


def decode_base64(value: str) -> bytes | None:
    """Standard base64 (padding required) to bytes; None when it is not valid base64."""
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None


class AuthenticateRequest(BaseModel):
    model_config = _STRICT

    certificate: StrictStr = Field(min_length=4, max_length=16_384, description="the card's user-authentication certificate, base64 DER")
    signature: StrictStr = Field(min_length=4, max_length=2_048, description="the card's signature over the challenge bytes, base64")


class OrderBody(BaseModel):
    model_config = _STRICT

    municipality_code: StrictStr = Field(pattern=r"^[0-9]{5,6}$")
    role: MunicipalityRole
    kind: CertificateKind
    person_ids: list[PersonId] = Field(default_factory=list, max_length=30)
    whole_household: StrictBool = False
    options: list[OptionCode] = Field(default_factory=list, max_length=20)
    copies: StrictInt = Field(default=1, ge=1, le=99)
    fiscal_year: StrictInt | None = Field(default=None, ge=1900, le=2200)


class PaymentBody(BaseModel):
    model_config = _STRICT

    amount_yen: StrictInt = Field(ge=0, le=10_000_000)


class StartedResponse(BaseModel):
    transaction_id: str
    state: str
    challenge: str  # base64 of 32 random bytes: the card signs these bytes
    challenge_expires_at: datetime
    expires_at: datetime


class TransactionStatus(BaseModel):
    transaction_id: str
    state: str
    expires_at: datetime
    fee_total_yen: int | None = None
    paid_yen: int | None = None
    refunded_yen: int | None = None
    order: dict[str, Any] | None = None


class DocumentInfo(BaseModel):
    document_id: str
    certificate_number: str
    kind: str
    copy_index: int
    sha256: str  # of the PDF bytes: the kiosk checks it before printing
    size: int


class DocumentList(BaseModel):
    transaction_id: str
    documents: list[DocumentInfo]
