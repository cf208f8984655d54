"""Checks of a card's user-authentication certificate and of its challenge signature.

The kiosk sends the certificate it read from EF 000A and the card's signature over the
server's challenge. `validate_card_certificate` decides whether that certificate may
authenticate someone now, and who; `verify_challenge_signature` proves the card holds its key.
Revocation comes from the same rows the OCSP responder and the CRLs publish.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from certserver.db.models.pki import CardCertificate, CertificatePurpose, TrustedCa
from certserver.pki.ca import CaBundle
from certserver.pki.profiles import serial_to_hex


class CardCertificateError(Exception):
    """A card that may not authenticate. `code` is stable (the API's error code); the
    messages are for the person at the kiosk."""

    code = "certificate_error"
    message_ja = "カードの電子証明書を確認できませんでした。"
    message_en = "The card's certificate could not be checked."

    def __init__(self, detail: str = "") -> None:
        super().__init__(f"{self.code}: {detail or self.message_en}")
        self.detail = detail


class CertificateMalformedError(CardCertificateError):
    code = "certificate_malformed"
    message_ja = "カードの電子証明書を読み取れませんでした。"
    message_en = "The card's certificate could not be read."


class CertificateUnknownCaError(CardCertificateError):
    code = "certificate_unknown_ca"
    message_ja = "このカードの電子証明書はご利用いただけません。"
    message_en = "This card's certificate was not issued by a trusted authority."


class CertificateExpiredError(CardCertificateError):
    code = "certificate_expired"
    message_ja = "利用者証明用電子証明書の有効期限が切れています。市区町村の窓口で更新してください。"
    message_en = "The card's authentication certificate has expired. Please renew it at your city office."


class CertificateNotYetValidError(CardCertificateError):
    code = "certificate_not_yet_valid"
    message_ja = "利用者証明用電子証明書はまだ有効ではありません。明日以降にご利用ください。"
    message_en = "The card's authentication certificate is not valid yet. Please try again from tomorrow."


class CertificateRevokedError(CardCertificateError):
    code = "certificate_revoked"
    message_ja = "利用者証明用電子証明書は失効しています。市区町村の窓口にお問い合わせください。"
    message_en = "The card's authentication certificate has been revoked. Please contact your city office."


class CertificateNotRegisteredError(CardCertificateError):
    code = "certificate_not_registered"
    message_ja = "このカードは登録されていません。市区町村の窓口にお問い合わせください。"
    message_en = "This card is not registered with any municipality. Please contact your city office."


class SignatureInvalidError(CardCertificateError):
    code = "signature_invalid"
    message_ja = "カードの署名を確認できませんでした。もう一度カードを置いてください。"
    message_en = "The card's signature could not be verified. Please place the card again."


@dataclass(frozen=True)
class ValidatedCard:
    """A certificate that may authenticate: its serial, the municipality that applied for it
    (where the centre routes the holder's requests) and until when. Who holds it is the
    municipality's to say (`certserver.services.card_holders`)."""

    serial: str  # registry form: upper-case hex
    municipality_code: str
    not_after: dt.datetime


def parse_certificate(cert_der: bytes) -> x509.Certificate:
    """Parse DER. Raises CertificateMalformedError."""
    try:
        cert = x509.load_der_x509_certificate(cert_der)
        cert.not_valid_after_utc  # noqa: B018 - forces the validity to decode now
    except (ValueError, TypeError) as exc:
        raise CertificateMalformedError("not a DER X.509 certificate") from exc
    return cert


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _trusted_anchor(session: Session, ca: CaBundle, cert: x509.Certificate) -> TrustedCa | x509.Certificate | None:
    for anchor in ca.trusted_external_auth_cas:
        if _issued_by(cert, anchor):
            return anchor
    rows = session.scalars(select(TrustedCa).where(TrustedCa.purpose == CertificatePurpose.AUTH.value))
    for row in rows:
        if _issued_by(cert, x509.load_der_x509_certificate(row.certificate_der)):
            return row
    return None


# Built once: every authentication runs it (see certserver.centre.transactions).
_CARD_BY_SERIAL = select(CardCertificate).where(CardCertificate.serial == bindparam("serial"))
# As the row is now, even when the session already holds it from the authentication.
_CARD_AS_IT_IS_NOW = _CARD_BY_SERIAL.execution_options(populate_existing=True)


def _aware(at: dt.datetime) -> dt.datetime:
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)


def validate_card_certificate(session: Session, ca: CaBundle, cert_der: bytes, at: dt.datetime) -> ValidatedCard:
    """Accept a user-authentication certificate at time `at` (naive = UTC) or raise.

    Checks in order: it parses (CertificateMalformedError); it was signed by the service's
    auth CA, or by an operator-trusted external CA for an enrolled real card
    (CertificateUnknownCaError); its validity period covers `at` (CertificateNotYetValidError,
    CertificateExpiredError); the exact certificate is one the JPKI service issued or an
    operator enrolled (CertificateNotRegisteredError); it is not revoked, at whatever date the
    revocation was recorded (CertificateRevokedError).
    """
    cert = parse_certificate(cert_der)
    own = _issued_by(cert, ca.auth_ca.cert)
    if not own and _trusted_anchor(session, ca, cert) is None:
        raise CertificateUnknownCaError("issuer is not a trusted user-authentication CA")
    moment = _aware(at)
    if moment < cert.not_valid_before_utc:
        raise CertificateNotYetValidError(f"valid from {cert.not_valid_before_utc.isoformat()}")
    if moment > cert.not_valid_after_utc:
        raise CertificateExpiredError(f"expired at {cert.not_valid_after_utc.isoformat()}")
    serial = serial_to_hex(cert.serial_number)
    record = session.scalar(_CARD_BY_SERIAL, {"serial": serial})
    if (
        record is None
        or record.purpose != CertificatePurpose.AUTH
        or record.certificate_der != cert_der
        or record.enrolled_real_card == own  # own certificates are issued, others enrolled
    ):
        raise CertificateNotRegisteredError(f"serial {serial} is not a registered card")
    _refuse_revoked(record)
    return ValidatedCard(serial=serial, municipality_code=record.municipality_code, not_after=cert.not_valid_after_utc)


def _refuse_revoked(record: CardCertificate) -> None:
    # A revocation counts from the moment it is made, whatever its date says: the date may be
    # later than the moment being checked (a service pretending an earlier time, a command
    # run on a host whose clock is ahead), and a stolen card must not pass meanwhile.
    if record.is_revoked:
        raise CertificateRevokedError(f"serial {record.serial} revoked")


def check_not_revoked(session: Session, serial: str) -> None:
    """Refuse a card that authenticated earlier and has been revoked since (payment and
    release check again). Raises CertificateRevokedError, CertificateNotRegisteredError."""
    record = session.scalar(_CARD_AS_IT_IS_NOW, {"serial": serial})
    if record is None:
        raise CertificateNotRegisteredError(f"serial {serial} is not a registered card")
    _refuse_revoked(record)


def verify_challenge_signature(cert_der: bytes, challenge: bytes, signature: bytes) -> None:
    """Check the card's RSASSA-PKCS1-v1_5 / SHA-256 signature over the raw challenge bytes
    (the card pads a DigestInfo of SHA-256(challenge), jpki.md §5).

    Raises CertificateMalformedError (unreadable certificate, not an RSA key) or
    SignatureInvalidError.
    """
    public_key = parse_certificate(cert_der).public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise CertificateMalformedError("the certificate's key is not RSA")
    try:
        public_key.verify(signature, challenge, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        raise SignatureInvalidError("signature does not verify") from exc
