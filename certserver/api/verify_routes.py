"""Public verification endpoints: anyone holding a certificate (file or paper) can check it.

    POST /verify/pdf   body: the PDF bytes (application/pdf, at most 5 MB)
    POST /verify/qr    body: {"text": "<decoded QR text>"}

Both answer 200 with the VerificationResult as JSON ({"status", "reason_ja", "reason_en",
"certificate_number", "municipality_code"}); a bad document is a result, not an error, and
so is a failure of the verification itself (status "indeterminate", logged with its
traceback by certserver.documents.verification, never reported as "modified").

Wiring (for the app factory): call `configure(app, trust, lookup)` once at start-up, with
`TrustStore.from_ca_dir(settings.ca_dir)` and a status lookup (certificate number ->
"issued" | "withdrawn" | None for unknown), then `app.include_router(router)`. Without a
lookup the endpoints check signatures only (offline). Both dependencies, `get_trust_store`
and `get_status_lookup`, can also be replaced with `app.dependency_overrides` in tests;
without a trust store the endpoints answer 503.
Verification is CPU work (~10 ms), so the handlers are sync and run in the thread pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, Field

from certserver.api.errors import declared
from certserver.documents.verification import Lookup, TrustStore, verify_pdf, verify_qr

MAX_PDF_BYTES = 5 * 1024 * 1024
MAX_QR_TEXT = 1000

router = APIRouter(prefix="/verify", tags=["verify"])


def configure(app: FastAPI, trust: TrustStore, lookup: Lookup | None = None) -> None:
    """Give the endpoints their trust store and (optionally) the issuing records' lookup."""
    app.state.document_trust_store = trust
    app.state.document_status_lookup = lookup


def get_trust_store(request: Request) -> TrustStore:
    trust = getattr(request.app.state, "document_trust_store", None)
    if trust is None:
        raise HTTPException(status_code=503, detail="verification is not configured")
    return trust


def get_status_lookup(request: Request) -> Lookup | None:
    return getattr(request.app.state, "document_status_lookup", None)


class QrRequest(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_QR_TEXT)


class VerificationResponse(BaseModel):
    status: str
    reason_ja: str
    reason_en: str
    certificate_number: str | None
    municipality_code: str | None


async def _pdf_body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_PDF_BYTES:
            raise HTTPException(status_code=413, detail="PDF larger than 5 MB")
    return bytes(body)


# Every verification: an app without a trust store, a bug.
_ANY = ("not_configured", "internal_error")


@router.post(
    "/pdf",
    response_model=VerificationResponse,
    responses=declared(_ANY, ("payload_too_large",)),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/pdf": {"schema": {"type": "string", "format": "binary", "maxLength": MAX_PDF_BYTES}}
            },
        }
    },
)
def verify_pdf_route(
    pdf: Annotated[bytes, Depends(_pdf_body)],
    trust: Annotated[TrustStore, Depends(get_trust_store)],
    lookup: Annotated[Lookup | None, Depends(get_status_lookup)],
) -> VerificationResponse:
    """Verify an uploaded certificate PDF."""
    return VerificationResponse.model_validate(verify_pdf(pdf, trust, lookup).as_dict())


@router.post("/qr", response_model=VerificationResponse, responses=declared(_ANY, ("invalid_request",)))
def verify_qr_route(
    request: QrRequest,
    trust: Annotated[TrustStore, Depends(get_trust_store)],
    lookup: Annotated[Lookup | None, Depends(get_status_lookup)],
) -> VerificationResponse:
    """Verify the decoded text of a certificate's QR code."""
    return VerificationResponse.model_validate(verify_qr(request.text, trust, lookup).as_dict())
