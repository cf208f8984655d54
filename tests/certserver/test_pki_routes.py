"""The public PKI endpoints: CRLs and the OCSP responder answer from the same records as card
authentication, over the real router (in-process ASGI, and a real uvicorn on 127.0.0.1)."""

from __future__ import annotations

import base64
import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from asgi_client import AsgiClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import ocsp
from fastapi import FastAPI
from pki_support import Db, add_resident, ca_bundle, card_json, db, sqlite_only  # noqa: F401 - fixtures

from certserver.api.pki_routes import PkiContext, router
from certserver.clock import host_now
from certserver.db.session import transaction
from certserver.pki.ca import CaBundle
from certserver.services import cards


@pytest.fixture
def app(db: Db, ca_bundle: CaBundle) -> FastAPI:
    app = FastAPI()
    app.include_router(router)
    app.state.pki = PkiContext(session_factory=db.factory, ca=ca_bundle, clock=host_now)
    return app


@pytest.fixture
def client(app: FastAPI) -> AsgiClient:
    return AsgiClient(app)


@pytest.fixture
def issued(db: Db, ca_bundle: CaBundle, tmp_path: Path) -> tuple[x509.Certificate, x509.Certificate]:
    """(auth, sign) certificates of a freshly issued card."""
    with transaction(db.factory) as session:
        add_resident(session)
    with transaction(db.factory) as session:
        cards.issue_card(session, ca_bundle, "toride-0001", pin="1234", password="ABC123", out=tmp_path / "c.json")
    raw = card_json(tmp_path / "c.json")["jpki"]
    return (
        x509.load_der_x509_certificate(base64.b64decode(raw["auth_certificate"])),
        x509.load_der_x509_certificate(base64.b64decode(raw["sign_certificate"])),
    )


def _ocsp_request(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    *,
    nonce: bytes | None = None,
    algorithm: hashes.HashAlgorithm | None = None,
) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm or hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def _post_ocsp(client: AsgiClient | httpx.Client, body: bytes) -> ocsp.OCSPResponse:
    response = client.post("/pki/ocsp", content=body, headers={"content-type": "application/ocsp-request"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/ocsp-response"
    return ocsp.load_der_ocsp_response(response.content)


def _revoke(db: Db, serial: str, reason: str) -> None:
    with transaction(db.factory) as session:
        cards.revoke_card(session, serial, reason)


def test_ocsp_says_good_for_an_active_card_signed_by_its_ca(client: AsgiClient, issued, ca_bundle: CaBundle) -> None:
    auth, _ = issued
    answer = _post_ocsp(client, _ocsp_request(auth, ca_bundle.auth_ca.cert, nonce=b"0123456789abcdef"))
    assert answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert answer.serial_number == auth.serial_number
    assert answer.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"0123456789abcdef"
    # Signed by the issuing CA itself (RFC 6960 §4.2.2.2).
    ca_key = ca_bundle.auth_ca.cert.public_key()
    assert isinstance(ca_key, rsa.RSAPublicKey)
    ca_key.verify(answer.signature, answer.tbs_response_bytes, padding.PKCS1v15(), hashes.SHA256())
    assert (
        answer.responder_key_hash
        == x509.SubjectKeyIdentifier.from_public_key(ca_bundle.auth_ca.cert.public_key()).digest
    )


def test_ocsp_says_revoked_with_time_and_reason(client: AsgiClient, db: Db, issued, ca_bundle: CaBundle) -> None:
    auth, sign = issued
    _revoke(db, format(auth.serial_number, "x"), "lost")
    for cert, issuer in ((auth, ca_bundle.auth_ca.cert), (sign, ca_bundle.sign_ca.cert)):
        answer = _post_ocsp(client, _ocsp_request(cert, issuer, algorithm=hashes.SHA256()))
        assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
        assert answer.revocation_reason is x509.ReasonFlags.key_compromise
        assert abs(answer.revocation_time_utc - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)


def test_ocsp_says_unknown_for_a_serial_the_ca_never_issued(client: AsgiClient, issued, ca_bundle: CaBundle) -> None:
    auth, _ = issued
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(
            *_hashes(auth, ca_bundle),
            serial_number=auth.serial_number + 1,
            algorithm=hashes.SHA1(),
        )
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    assert _post_ocsp(client, request).certificate_status is ocsp.OCSPCertStatus.UNKNOWN


def _hashes(cert: x509.Certificate, ca: CaBundle) -> tuple[bytes, bytes]:
    probe = ocsp.OCSPRequestBuilder().add_certificate(cert, ca.auth_ca.cert, hashes.SHA1()).build()
    return probe.issuer_name_hash, probe.issuer_key_hash


@sqlite_only
def test_ocsp_refuses_other_cas_and_garbage_with_ocsp_statuses(client: AsgiClient, issued, ca_bundle: CaBundle) -> None:
    # The document CA is not a card CA: this responder does not answer for it.
    foreign = _ocsp_request(ca_bundle.document_ca.cert, ca_bundle.document_ca.cert)
    assert _post_ocsp(client, foreign).response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
    assert _post_ocsp(client, b"garbage").response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


@sqlite_only
def test_ocsp_post_needs_the_ocsp_media_type_and_a_small_body(client: AsgiClient, issued, ca_bundle: CaBundle) -> None:
    auth, _ = issued
    body = _ocsp_request(auth, ca_bundle.auth_ca.cert)
    assert client.post("/pki/ocsp", content=body, headers={"content-type": "text/plain"}).status_code == 415
    huge = b"\x30" * (64 * 1024)
    assert (
        client.post("/pki/ocsp", content=huge, headers={"content-type": "application/ocsp-request"}).status_code == 413
    )


def test_ocsp_get_form_answers_like_post(client: AsgiClient, db: Db, issued, ca_bundle: CaBundle) -> None:
    auth, _ = issued
    encoded = quote(base64.b64encode(_ocsp_request(auth, ca_bundle.auth_ca.cert)).decode(), safe="")
    response = client.get(f"/pki/ocsp/{encoded}")
    assert response.status_code == 200
    assert ocsp.load_der_ocsp_response(response.content).certificate_status is ocsp.OCSPCertStatus.GOOD
    bad = client.get("/pki/ocsp/%%%not-base64")
    assert ocsp.load_der_ocsp_response(bad.content).response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


@pytest.mark.parametrize("purpose", ["auth", "sign"])
def test_crl_is_signed_by_its_ca_and_lists_revoked_certificates(
    client: AsgiClient, db: Db, issued, ca_bundle: CaBundle, purpose: str
) -> None:
    auth, sign = issued
    issuer = ca_bundle.for_purpose(purpose).cert
    mine = auth if purpose == "auth" else sign

    def fetch() -> x509.CertificateRevocationList:
        response = client.get(f"/pki/crl/{purpose}.crl")
        assert response.status_code == 200 and response.headers["content-type"] == "application/pkix-crl"
        crl = x509.load_der_x509_crl(response.content)
        assert crl.issuer == issuer.subject and crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
        assert crl.next_update_utc is not None and crl.next_update_utc > crl.last_update_utc
        return crl

    assert fetch().get_revoked_certificate_by_serial_number(mine.serial_number) is None
    _revoke(db, format(auth.serial_number, "X"), "deceased")
    entry = fetch().get_revoked_certificate_by_serial_number(mine.serial_number)
    assert entry is not None
    assert (
        entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is x509.ReasonFlags.cessation_of_operation
    )
    assert len(list(fetch())) == 1  # the other purpose's certificate is on the other CRL


@sqlite_only
def test_ca_certificates_are_published_as_der(client: AsgiClient, ca_bundle: CaBundle) -> None:
    for purpose in ("auth", "sign"):
        response = client.get(f"/pki/ca/{purpose}.crt")
        assert response.status_code == 200 and response.headers["content-type"] == "application/pkix-cert"
        assert response.content == ca_bundle.for_purpose(purpose).der
    assert client.get("/pki/ca/document.crt").status_code == 404


@sqlite_only
def test_unknown_crl_is_404_and_missing_context_is_503(client: AsgiClient) -> None:
    assert client.get("/pki/crl/document.crl").status_code == 404
    bare = FastAPI()
    bare.include_router(router)
    assert AsgiClient(bare).get("/pki/crl/auth.crl").status_code == 503


# -- a real server ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def live_server(app: FastAPI) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_real_http_server_answers_ocsp_and_crl(live_server: str, db: Db, issued, ca_bundle: CaBundle) -> None:
    auth, _ = issued
    with httpx.Client(base_url=live_server, timeout=10) as http:
        assert (
            _post_ocsp(http, _ocsp_request(auth, ca_bundle.auth_ca.cert)).certificate_status is ocsp.OCSPCertStatus.GOOD
        )
        _revoke(db, format(auth.serial_number, "X"), "moved_out")
        answer = _post_ocsp(http, _ocsp_request(auth, ca_bundle.auth_ca.cert))
        assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
        assert answer.revocation_reason is x509.ReasonFlags.affiliation_changed
        crl = x509.load_der_x509_crl(http.get("/pki/crl/auth.crl").content)
        assert crl.get_revoked_certificate_by_serial_number(auth.serial_number) is not None


def test_ocsp_after_an_attribute_change_says_auth_good_and_sign_revoked(
    client: AsgiClient, db: Db, issued, ca_bundle: CaBundle
) -> None:
    """A move within the municipality ends the signing certificate only (jpki.md §11)."""
    auth, sign = issued
    _revoke(db, format(sign.serial_number, "x"), "attributes_changed")
    auth_answer = _post_ocsp(client, _ocsp_request(auth, ca_bundle.auth_ca.cert))
    sign_answer = _post_ocsp(client, _ocsp_request(sign, ca_bundle.sign_ca.cert))
    assert auth_answer.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert sign_answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert sign_answer.revocation_reason is x509.ReasonFlags.affiliation_changed


def test_crl_and_ocsp_times_come_from_the_service_clock(db: Db, issued, ca_bundle: CaBundle) -> None:
    """A service pretending a date ten days back dates its CRL and OCSP answers (thisUpdate,
    nextUpdate, revocation time) by that clock, not the host's; nextUpdate follows thisUpdate."""
    from certserver.pki.crl import CRL_LIFETIME
    from certserver.pki.ocsp import RESPONSE_LIFETIME

    pretended = (dt.datetime.now(dt.UTC) - dt.timedelta(days=10)).replace(microsecond=0)
    app = FastAPI()
    app.include_router(router)
    app.state.pki = PkiContext(session_factory=db.factory, ca=ca_bundle, clock=lambda: pretended)
    client = AsgiClient(app)
    auth, _ = issued
    # Revoked by a command whose clock ran ahead of the service's: the answers date it no later
    # than themselves.
    _revoke(db, format(auth.serial_number, "x"), "lost")
    crl = x509.load_der_x509_crl(client.get("/pki/crl/auth.crl").content)
    assert crl.last_update_utc == pretended and crl.next_update_utc == pretended + CRL_LIFETIME
    entry = crl.get_revoked_certificate_by_serial_number(auth.serial_number)
    assert entry is not None and entry.revocation_date_utc <= pretended
    answer = _post_ocsp(client, _ocsp_request(auth, ca_bundle.auth_ca.cert))
    assert answer.this_update_utc == pretended and answer.produced_at_utc == pretended
    assert answer.next_update_utc == pretended + RESPONSE_LIFETIME
    assert answer.revocation_time_utc is not None and answer.revocation_time_utc <= pretended
