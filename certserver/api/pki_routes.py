"""Public PKI endpoints of the test JPKI CA: CRLs and an OCSP responder.

    GET  /pki/ca/auth.crt, /pki/ca/sign.crt      DER CA certificate (application/pkix-cert)
    GET  /pki/crl/auth.crl, /pki/crl/sign.crl    DER CRL (application/pkix-crl)
    POST /pki/ocsp                               application/ocsp-request -> application/ocsp-response
    GET  /pki/ocsp/{base64 request}              RFC 6960 Appendix A.1 GET form

What the app must do (certserver.app.create_app): include `router` and provide the context,
either by setting `app.state.pki = PkiContext(session_factory=..., ca=CaBundle.load(...), clock=...)`
or by overriding the dependency:
`app.dependency_overrides[get_pki_context] = lambda: PkiContext(...)`.
Without either, the endpoints answer 503.

Each request uses its own short read-only session from the factory. These endpoints need no
kiosk credentials: CRLs and OCSP answers are public by design (they carry only serials).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi import Path as PathParam
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from certserver.api.errors import declared
from certserver.clock import Clock
from certserver.pki import crl, ocsp
from certserver.pki.ca import CaBundle
from certserver.pki.profiles import Purpose

CERT_MEDIA_TYPE = "application/pkix-cert"
CRL_MEDIA_TYPE = "application/pkix-crl"
OCSP_REQUEST_MEDIA_TYPE = "application/ocsp-request"
OCSP_RESPONSE_MEDIA_TYPE = "application/ocsp-response"


@dataclass(frozen=True)
class PkiContext:
    """What the PKI endpoints need: database sessions, the loaded CAs and the service clock
    (CRLs and OCSP answers are dated by it, like every revocation they report)."""

    session_factory: sessionmaker[Session]
    ca: CaBundle
    clock: Clock


def get_pki_context(request: Request) -> PkiContext:
    """The context from `app.state.pki`; answers 503 when the app did not provide one."""
    context = getattr(request.app.state, "pki", None)
    if not isinstance(context, PkiContext):
        raise HTTPException(status_code=503, detail="PKI endpoints are not configured")
    return context


PkiContextDep = Annotated[PkiContext, Depends(get_pki_context)]

router = APIRouter(prefix="/pki", tags=["pki"])

# Every PKI endpoint: an app without the PKI context, a bug; and a path parameter (always a
# string here, so never refused in practice: declared so that FastAPI's own 422 is not).
_ANY = ("invalid_request", "not_configured", "internal_error")


def _binary(media_type: str) -> dict[str, dict[str, object]]:
    return {media_type: {"schema": {"type": "string", "format": "binary"}}}


def _read_only(context: PkiContext) -> Session:
    return context.session_factory()


# The CA's name in a path: any other name is a plain 404 (no such CA), not a 422, so the
# enum is only declared, for the document's readers and the fuzzer.
CaName = Annotated[str, PathParam(json_schema_extra={"enum": [p.value for p in Purpose]})]


def _card_purpose(purpose: str) -> Purpose:
    if purpose not in (Purpose.AUTH.value, Purpose.SIGN.value):
        raise HTTPException(status_code=404, detail="no such CA")
    return Purpose(purpose)


@router.get(
    "/ca/{purpose}.crt",
    response_class=Response,
    responses={200: {"content": _binary(CERT_MEDIA_TYPE)}, **declared(_ANY, ("not_found",))},
)
def get_ca_certificate(purpose: CaName, context: PkiContextDep) -> Response:
    """The self-signed certificate of the "auth" or "sign" test CA (what EF 000B / 0002 hold)."""
    der = context.ca.for_purpose(_card_purpose(purpose)).der
    return Response(
        content=der,
        media_type=CERT_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="jpki-emulator-{purpose}-ca.crt"'},
    )


@router.get(
    "/crl/{purpose}.crl",
    response_class=Response,
    responses={200: {"content": _binary(CRL_MEDIA_TYPE)}, **declared(_ANY, ("not_found",))},
)
def get_crl(purpose: CaName, context: PkiContextDep) -> Response:
    """The current CRL of the user-authentication ("auth") or signing ("sign") CA."""
    card_purpose = _card_purpose(purpose)
    with _read_only(context) as session:
        body = crl.crl_der(session, context.ca, card_purpose, context.clock())
    return Response(
        content=body,
        media_type=CRL_MEDIA_TYPE,
        headers={"Cache-Control": "no-cache", "Content-Disposition": f'attachment; filename="{purpose}.crl"'},
    )


def _ocsp_answer(context: PkiContext, request_der: bytes) -> Response:
    with _read_only(context) as session:
        body = ocsp.respond(session, context.ca, request_der, context.clock())
    return Response(content=body, media_type=OCSP_RESPONSE_MEDIA_TYPE, headers={"Cache-Control": "no-cache"})


@router.post(
    "/ocsp",
    response_class=Response,
    responses={
        200: {"content": _binary(OCSP_RESPONSE_MEDIA_TYPE)},
        **declared(_ANY[1:], ("payload_too_large", "unsupported_media_type")),  # no parameter to refuse
    },
    openapi_extra={"requestBody": {"required": True, "content": _binary(OCSP_REQUEST_MEDIA_TYPE)}},
)
async def post_ocsp(request: Request, context: PkiContextDep) -> Response:
    """RFC 6960 POST: the DER request is the body."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != OCSP_REQUEST_MEDIA_TYPE:
        raise HTTPException(status_code=415, detail=f"send {OCSP_REQUEST_MEDIA_TYPE}")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > ocsp.MAX_REQUEST_BYTES:
            raise HTTPException(status_code=413, detail="OCSP request too large")
    # Signing and the database read are blocking: run them off the event loop.
    return await run_in_threadpool(_ocsp_answer, context, bytes(body))


@router.get(
    "/ocsp/{encoded:path}",
    response_class=Response,
    # not_found: a path with a line break (%0A) matches no route (`path` stops at one).
    responses={200: {"content": _binary(OCSP_RESPONSE_MEDIA_TYPE)}, **declared(_ANY, ("not_found", "uri_too_long"))},
)
def get_ocsp(encoded: str, context: PkiContextDep) -> Response:
    """RFC 6960 Appendix A.1 GET: the URL-encoded base64 of the DER request."""
    if len(encoded) > 2 * ocsp.MAX_REQUEST_BYTES:
        raise HTTPException(status_code=414, detail="OCSP request too large")
    try:
        request_der = base64.b64decode(unquote(encoded), validate=True)
    except (binascii.Error, ValueError):
        request_der = b""  # answered as malformedRequest, as RFC 6960 §2.3 asks
    return _ocsp_answer(context, request_der)
