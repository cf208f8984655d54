"""The OCSP responder of the two card CAs (RFC 6960), answering from the registry of card
certificates. Responses are signed by the issuing CA itself (RFC 6960 §4.2.2.2 allows it),
so a client needs no extra responder certificate."""

from __future__ import annotations

import datetime as dt
import logging
from functools import lru_cache

from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from sqlalchemy import select
from sqlalchemy.orm import Session

from certserver.db.models.pki import CardCertificate
from certserver.pki.ca import CaBundle, LoadedCa
from certserver.pki.profiles import Purpose, serial_to_hex
from certserver.pki.revocation import revocation_date, x509_reason

log = logging.getLogger(__name__)

RESPONSE_LIFETIME = dt.timedelta(hours=1)  # nextUpdate of each answer
MAX_REQUEST_BYTES = 16 * 1024  # a single-certificate request is ~100 bytes


@lru_cache(maxsize=64)
def _issuer_hashes(ca_der: bytes, algorithm_name: str) -> tuple[bytes, bytes]:
    """(issuerNameHash, issuerKeyHash) of a CA under a hash algorithm, computed by letting
    cryptography build a request for the self-signed CA certificate itself."""
    cert = x509.load_der_x509_certificate(ca_der)
    algorithm = _ALGORITHMS[algorithm_name]()
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, cert, algorithm).build()
    return request.issuer_name_hash, request.issuer_key_hash


_ALGORITHMS: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def _issuing_ca(ca: CaBundle, request: ocsp.OCSPRequest) -> tuple[Purpose, LoadedCa] | None:
    name = request.hash_algorithm.name
    if name not in _ALGORITHMS:
        return None
    for purpose in (Purpose.AUTH, Purpose.SIGN):
        loaded = ca.for_purpose(purpose)
        if _issuer_hashes(loaded.der, name) == (request.issuer_name_hash, request.issuer_key_hash):
            return purpose, loaded
    return None


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)


def respond(session: Session, ca: CaBundle, request_der: bytes, now: dt.datetime) -> bytes:
    """A DER OCSPResponse for a DER OCSPRequest, as of `now` (the service clock's reading).
    Never raises for bad input: a malformed request gets `malformedRequest`, a certificate of
    another CA `unauthorized`. A revoked certificate is `revoked` whatever its revocation's
    date (see revocation.revocation_date)."""
    if len(request_der) > MAX_REQUEST_BYTES:
        return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
    try:
        request = ocsp.load_der_ocsp_request(request_der)
        issuing = _issuing_ca(ca, request)
    except (ValueError, UnsupportedAlgorithm):
        return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
    if issuing is None:
        return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    purpose, issuer = issuing
    this_update = now.astimezone(dt.UTC).replace(microsecond=0)
    record = session.scalar(
        select(CardCertificate).where(
            CardCertificate.serial == serial_to_hex(request.serial_number),
            CardCertificate.purpose == purpose.value,
            CardCertificate.enrolled_real_card.is_(False),
        )
    )
    status, revoked_at, reason = ocsp.OCSPCertStatus.UNKNOWN, None, None
    if record is not None and record.is_revoked and record.revoked_at is not None:
        status, revoked_at = ocsp.OCSPCertStatus.REVOKED, revocation_date(record.revoked_at, this_update)
        flag = x509_reason(record.revocation_reason)
        reason = None if flag is x509.ReasonFlags.unspecified else flag
    elif record is not None:
        status = ocsp.OCSPCertStatus.GOOD
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial_number,
            algorithm=request.hash_algorithm,
            cert_status=status,
            this_update=this_update,
            next_update=this_update + RESPONSE_LIFETIME,
            revocation_time=revoked_at,
            revocation_reason=reason,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer.cert)
    )
    try:
        nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value
        builder = builder.add_extension(nonce, critical=False)
    except x509.ExtensionNotFound:
        pass
    log.info("OCSP %s serial %s: %s", purpose.value, serial_to_hex(request.serial_number), status.name)
    signed = builder.sign(issuer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    return _produced_at(signed, this_update, issuer)


def _produced_at(response_der: bytes, produced_at: dt.datetime, issuer: LoadedCa) -> bytes:
    """The signed response with its producedAt set to the service clock's `produced_at` and
    signed again. cryptography's builder always stamps the host's time, which would put an
    answer of a service pretending another date outside its own thisUpdate..nextUpdate.
    Raises TypeError for a CA key that is neither RSA nor EC."""
    response = asn1_ocsp.OCSPResponse.load(response_der)
    basic = response["response_bytes"]["response"].parsed
    tbs = basic["tbs_response_data"]
    tbs["produced_at"] = produced_at
    tbs_der = tbs.dump(force=True)
    basic["tbs_response_data"] = asn1_ocsp.ResponseData.load(tbs_der)
    basic["signature"] = _sign_sha256(issuer, tbs_der)
    response["response_bytes"]["response"] = basic
    return response.dump(force=True)


def _sign_sha256(issuer: LoadedCa, data: bytes) -> bytes:
    # The same algorithm the builder declared in signatureAlgorithm (sha256With...).
    if isinstance(issuer.key, rsa.RSAPrivateKey):
        return issuer.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(issuer.key, ec.EllipticCurvePrivateKey):
        return issuer.key.sign(data, ec.ECDSA(hashes.SHA256()))
    raise TypeError(f"unsupported CA key type {type(issuer.key).__name__}")
