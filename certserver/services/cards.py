"""Cards: issue a virtual My Number card to a resident, revoke cards, list them, and enrol a
real card's user-authentication certificate for a demo resident.

Every function works in the caller's session and never commits: the caller's transaction
decides. `issue_card` writes the card file only after the certificates are flushed to the
database, so a failure before the commit can leave at most a card whose certificates are
unknown to the service (refused as `certificate_not_registered`), never a registered card
without a file that was promised.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from certserver.db.models.pki import (
    CardCertificate,
    CertificatePurpose,
    CertificateStatus,
    TrustedCa,
)
from certserver.db.models.registry import Municipality, Resident, ResidentCard, ResidentStatus
from certserver.pki import entropy, profiles
from certserver.pki.ca import CaBundle
from certserver.pki.issuance import CardCredentials, IssuedCertificate, issue_card_credentials
from certserver.pki.profiles import CardHolder
from certserver.pki.revocation import RevocationReason, parse_reason
from konbini_common.cardfile import CardFaceData, CardFile, KenhojoData, PinRecord, new_card_pins

log = logging.getLogger(__name__)

PIN_PATTERN = re.compile(r"[0-9]{4}")  # jpki.md §2: EF 0018, 4 digits
PASSWORD_PATTERN = re.compile(r"[A-Z0-9]{6,16}")  # jpki.md §2: EF 001B, 6-16 upper-case alnum
_SEX_CODES = {"男": "1", "女": "2"}  # 基本4情報 / certificate: 1 male, 2 female, 9 not applicable


class CardServiceError(Exception):
    """A card operation refused; the message is one line for an operator."""


class InvalidPinFormatError(CardServiceError):
    """A PIN or signing password that the card would not accept."""


class ResidentNotFoundError(CardServiceError):
    pass


class ResidentNotEligibleError(CardServiceError):
    """The resident cannot get a card (moved out, deceased, no My Number)."""


class CardFileExistsError(CardServiceError):
    pass


class CertificateNotFoundError(CardServiceError):
    pass


class AlreadyRevokedError(CardServiceError):
    pass


class EnrollmentError(CardServiceError):
    """A real card's certificate that cannot be enrolled (untrusted, expired, duplicate ...)."""


@dataclass(frozen=True)
class IssuedCard:
    resident_id: str
    auth_serial: str
    sign_serial: str | None  # None for a holder under 15
    path: Path


@dataclass(frozen=True)
class CardSummary:
    """One certificate as `card list` shows it."""

    serial: str
    card_id: str
    resident_id: str
    purpose: str
    status: str
    not_before: dt.datetime
    not_after: dt.datetime
    revoked_at: dt.datetime | None
    revocation_reason: str | None
    card_file: str | None
    enrolled_real_card: bool


def check_pin_format(pin: str, password: str) -> None:
    """Raise InvalidPinFormatError unless pin is 4 digits and password 6-16 of A-Z0-9."""
    if not PIN_PATTERN.fullmatch(pin):
        raise InvalidPinFormatError("the PIN must be exactly 4 digits (利用者証明用暗証番号)")
    if not PASSWORD_PATTERN.fullmatch(password):
        raise InvalidPinFormatError("the signing password must be 6-16 characters of A-Z and 0-9 (署名用パスワード)")


def _now(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")
    return now


def _load_resident(session: Session, resident_id: str) -> Resident:
    resident = session.get(Resident, resident_id)
    if resident is None:
        raise ResidentNotFoundError(f"no resident with id {resident_id!r}")
    return resident


def holder_of(resident: Resident) -> CardHolder:
    """The 基本4情報 of a resident as the card and its signing certificate carry them."""
    return CardHolder(
        name=resident.name,
        birth_date=resident.birth_date,
        sex=_SEX_CODES.get(resident.sex, "9"),
        address=profiles.full_width_address(resident.address),
    )


def _record(
    cert: IssuedCertificate, *, card_id: str, municipality_code: str, issued_at: dt.datetime, card_file: str | None
) -> CardCertificate:
    return CardCertificate(
        serial=cert.serial,
        card_id=card_id,
        municipality_code=municipality_code,
        purpose=cert.purpose.value,
        subject_cn=cert.common_name,
        issued_at=issued_at,
        not_before=cert.certificate.not_valid_before_utc,
        not_after=cert.certificate.not_valid_after_utc,
        status=CertificateStatus.ACTIVE.value,
        card_file=card_file,
        enrolled_real_card=False,
        certificate_der=cert.der,
    )


def _holder_record(serial: str, card_id: str, resident: Resident) -> ResidentCard:
    return ResidentCard(
        serial=serial, card_id=card_id, resident_id=resident.id, municipality_code=resident.municipality_code
    )


def _eligible_resident(session: Session, resident_id: str) -> Resident:
    resident = _load_resident(session, resident_id)
    if resident.status in (ResidentStatus.MOVED_OUT, ResidentStatus.DECEASED):
        raise ResidentNotEligibleError(f"resident {resident_id} is {resident.status}: no card can be issued")
    if not resident.my_number:
        raise ResidentNotEligibleError(f"resident {resident_id} has no My Number (個人番号)")
    return resident


def _card_file(
    ca: CaBundle,
    resident: Resident,
    holder: CardHolder,
    credentials: CardCredentials,
    pins: dict[str, PinRecord],
    issued_at: dt.datetime,
) -> CardFile:
    sign = credentials.sign
    expires_on = profiles.card_expiry(holder.birth_date, issued_at, _stay_ends_on(resident))
    return CardFile(
        auth_certificate=credentials.auth.der,
        auth_ca_certificate=ca.auth_ca.der,
        auth_private_key=credentials.auth.private_key_pem(),
        sign_certificate=None if sign is None else sign.der,
        sign_ca_certificate=None if sign is None else ca.sign_ca.der,
        sign_private_key=None if sign is None else sign.private_key_pem(),
        kenhojo=KenhojoData(
            my_number=resident.my_number or "",
            name=holder.name,
            address=holder.address,
            birth_date=holder.birth_date.strftime("%Y%m%d"),
            sex=holder.sex,
        ),
        pins=pins,
        label=f"TEST ONLY virtual card of resident {resident.id}",
        card_face=CardFaceData(municipality_code=resident.municipality_code, expires_on=expires_on.strftime("%Y%m%d")),
    )


def _stay_ends_on(resident: Resident) -> dt.date | None:
    """A foreign resident's last day of the period of stay (None for a Japanese national)."""
    return resident.period_expires_on if resident.is_foreign else None


def issue_card(
    session: Session,
    ca: CaBundle,
    resident_id: str,
    *,
    pin: str,
    password: str,
    out: Path,
    now: dt.datetime | None = None,
    kenhojo_pin: str | None = None,
    overwrite: bool = False,
    jpki: Session | None = None,
) -> IssuedCard:
    """Issue a new virtual card to an active resident and write its card file to `out`.

    `session` is the municipality's store (the resident, and who holds the card), `jpki` the
    JPKI service's (the certificates' records; default: the same session, the all-in-one
    layout). The 券面事項入力補助 PIN defaults to `pin`. Raises InvalidPinFormatError,
    ResidentNotFoundError, ResidentNotEligibleError, CardFileExistsError, CardServiceError
    (file cannot be written).
    """
    check_pin_format(pin, password)
    if kenhojo_pin is not None and not PIN_PATTERN.fullmatch(kenhojo_pin):
        raise InvalidPinFormatError("the 券面事項入力補助 PIN must be exactly 4 digits")
    issued_at = _now(now).astimezone(dt.UTC).replace(microsecond=0)
    resident = _eligible_resident(session, resident_id)
    out = Path(out)
    if out.exists() and not overwrite:
        raise CardFileExistsError(f"{out} already exists; choose another file name")
    if not out.parent.is_dir():
        raise CardServiceError(f"folder {out.parent} does not exist")
    holder = holder_of(resident)
    municipality = session.get(Municipality, resident.municipality_code)
    credentials = issue_card_credentials(
        ca,
        holder=holder,
        municipality_code=resident.municipality_code,
        issued_at=issued_at,
        locality=None if municipality is None else municipality.name_en,
        stay_ends_on=_stay_ends_on(resident),
    )
    card_id = entropy.token_hex(16)
    card_file = str(out.resolve())
    issued = [c for c in (credentials.auth, credentials.sign) if c is not None]
    for cert in issued:
        # The JPKI record names the applying municipality; the municipality's own record
        # names the holder.
        (jpki or session).add(
            _record(
                cert,
                card_id=card_id,
                municipality_code=resident.municipality_code,
                issued_at=issued_at,
                card_file=card_file,
            )
        )
        session.add(_holder_record(cert.serial, card_id, resident))
    if jpki is not None:
        jpki.flush()
    session.flush()
    sign = credentials.sign
    pins = new_card_pins(pin=pin, password=password, kenhojo_pin=kenhojo_pin or pin, salt=entropy.token_bytes)
    try:
        _card_file(ca, resident, holder, credentials, pins, issued_at).save(out, overwrite=overwrite)
    except FileExistsError as exc:
        raise CardFileExistsError(f"{out} already exists; choose another file name") from exc
    except OSError as exc:
        raise CardServiceError(f"cannot write the card file {out}: {exc.strerror}") from exc
    log.info(
        "issued card %s: auth serial %s, sign serial %s",
        card_id,
        credentials.auth.serial,
        None if sign is None else sign.serial,
    )
    return IssuedCard(resident.id, credentials.auth.serial, None if sign is None else sign.serial, out)


def _revoke(record: CardCertificate, reason: str, at: dt.datetime) -> None:
    record.status = CertificateStatus.REVOKED.value
    record.revoked_at = at
    record.revocation_reason = reason


def _purposes_revoked_by(reason: RevocationReason) -> tuple[str, ...]:
    """Which of a card's certificates a reason ends (jpki.md §11.2-11.3): a change of name,
    address, birth date or sex (基本4情報) ends only the signing certificate, whose subjectAltName
    carries them; the user-authentication certificate carries no personal data and stays valid,
    so the card still works at a kiosk after a move within the municipality. Everything else
    (loss, moving out, death ...) ends both."""
    if reason is RevocationReason.ATTRIBUTES_CHANGED:
        return (CertificatePurpose.SIGN.value,)
    return (CertificatePurpose.AUTH.value, CertificatePurpose.SIGN.value)


def revoke_card(session: Session, serial: str, reason: str, now: dt.datetime | None = None) -> list[str]:
    """Revoke the active certificates that `reason` ends on the card holding `serial` (auth or
    sign): both, or only the signing one for attributes_changed. Returns the serials revoked.

    Raises ValueError (bad serial or reason text), CertificateNotFoundError,
    AlreadyRevokedError (nothing left for that reason to revoke).
    """
    parsed_reason = parse_reason(reason)
    normalised = profiles.normalise_serial(serial)
    record = session.scalar(select(CardCertificate).where(CardCertificate.serial == normalised))
    if record is None:
        raise CertificateNotFoundError(f"no card certificate with serial {normalised}")
    at = _now(now).astimezone(dt.UTC).replace(microsecond=0)
    purposes = _purposes_revoked_by(parsed_reason)
    active = session.scalars(
        select(CardCertificate)
        .where(
            CardCertificate.card_id == record.card_id,
            CardCertificate.status == CertificateStatus.ACTIVE.value,
            CardCertificate.purpose.in_(purposes),
        )
        .order_by(CardCertificate.id)
        .with_for_update()
    ).all()
    if not active:
        what = "signing certificate" if purposes == (CertificatePurpose.SIGN.value,) else "card"
        raise AlreadyRevokedError(
            f"the {what} with serial {normalised} is already revoked"
            if record.purpose in purposes
            else f"the card with serial {normalised} has no active {what}"
        )
    for cert in active:
        _revoke(cert, parsed_reason.value, at)
    session.flush()
    revoked = [cert.serial for cert in active]
    log.info("revoked %s of card %s (reason %s)", ", ".join(revoked), record.card_id, parsed_reason.value)
    return revoked


def revoke_cards_of_resident(session: Session, resident_id: str, reason: str, now: dt.datetime | None = None) -> int:
    """Revoke a resident's active certificates that `reason` ends (moved out, deceased: all;
    attributes_changed: the signing ones); returns how many.

    Raises ValueError for an unknown reason.
    """
    parsed_reason = parse_reason(reason)
    at = _now(now).astimezone(dt.UTC).replace(microsecond=0)
    active = session.scalars(
        select(CardCertificate)
        .join(ResidentCard, ResidentCard.serial == CardCertificate.serial)
        .where(
            ResidentCard.resident_id == resident_id,
            CardCertificate.status == CertificateStatus.ACTIVE.value,
            CardCertificate.purpose.in_(_purposes_revoked_by(parsed_reason)),
        )
        .with_for_update()
    ).all()
    for cert in active:
        _revoke(cert, parsed_reason.value, at)
    session.flush()
    log.info("revoked %d certificates of a resident (reason %s)", len(active), parsed_reason.value)
    return len(active)


def list_cards(session: Session, resident_id: str | None = None, registry: Session | None = None) -> list[CardSummary]:
    """Every card certificate (or a resident's), oldest first: the JPKI records in
    `session`, their holders from `registry` (default: the same session)."""
    if registry is None:
        query = _WITH_HOLDER.order_by(CardCertificate.id)
        if resident_id is not None:
            query = query.where(ResidentCard.resident_id == resident_id)
        return [_summary(record, holder) for record, holder in session.execute(query).all()]
    records = session.scalars(select(CardCertificate).order_by(CardCertificate.id)).all()
    holders = _holders(registry, [r.serial for r in records])
    return [
        _summary(r, holders.get(r.serial))
        for r in records
        if resident_id is None or holders.get(r.serial) == resident_id
    ]


# A certificate with its holder as the applying municipality records it (an operator's view:
# one database holds both stores today).
_WITH_HOLDER = select(CardCertificate, ResidentCard.resident_id).outerjoin(
    ResidentCard, ResidentCard.serial == CardCertificate.serial
)


def _summary(r: CardCertificate, resident_id: str | None) -> CardSummary:
    return CardSummary(
        serial=r.serial,
        card_id=r.card_id,
        resident_id=resident_id or "",
        purpose=r.purpose,
        status=r.status,
        not_before=r.not_before,
        not_after=r.not_after,
        revoked_at=r.revoked_at,
        revocation_reason=r.revocation_reason,
        card_file=r.card_file,
        enrolled_real_card=r.enrolled_real_card,
    )


def load_certificate_bytes(data: bytes) -> x509.Certificate:
    """A certificate from DER or PEM bytes. Raises ValueError."""
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _may_sign(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    except x509.ExtensionNotFound:
        return True  # no keyUsage: unrestricted (RFC 5280 §4.2.1.3)


def _trusted_ca_row(session: Session, ca_cert: x509.Certificate, at: dt.datetime) -> TrustedCa:
    der = ca_cert.public_bytes(serialization.Encoding.DER)
    fingerprint = hashlib.sha256(der).hexdigest()
    row = session.scalar(select(TrustedCa).where(TrustedCa.fingerprint_sha256 == fingerprint))
    if row is None:
        row = TrustedCa(
            fingerprint_sha256=fingerprint,
            subject=ca_cert.subject.rfc4514_string()[:1024],
            purpose=CertificatePurpose.AUTH.value,
            added_at=at,
            certificate_der=der,
        )
        session.add(row)
        session.flush()
        log.info("operator trusts external CA %s", fingerprint)
    return row


def enroll_real_card(
    session: Session,
    ca: CaBundle,
    resident_id: str,
    cert_data: bytes,
    trust_ca_data: bytes,
    now: dt.datetime | None = None,
    jpki: Session | None = None,
) -> CardSummary:
    """Register a real card's user-authentication certificate (DER or PEM) for a resident,
    trusting `trust_ca_data` (the CA certificate the operator chose) as its issuer.
    `jpki` as for `issue_card`.

    Raises ResidentNotFoundError, ResidentNotEligibleError, EnrollmentError.
    """
    at = _now(now).astimezone(dt.UTC).replace(microsecond=0)
    resident = _load_resident(session, resident_id)
    if resident.status in (ResidentStatus.MOVED_OUT, ResidentStatus.DECEASED):
        raise ResidentNotEligibleError(f"resident {resident_id} is {resident.status}: no card can be enrolled")
    try:
        cert = load_certificate_bytes(cert_data)
        trust_ca = load_certificate_bytes(trust_ca_data)
    except ValueError as exc:
        raise EnrollmentError("the card certificate or the CA certificate is not DER or PEM X.509") from exc
    if not _is_ca(trust_ca):
        raise EnrollmentError("the --trust-ca certificate is not a CA certificate")
    own_cas = (ca.auth_ca.cert, ca.sign_ca.cert, ca.document_ca.cert)
    if trust_ca in own_cas:
        raise EnrollmentError("that is this service's own test CA: its cards are registered by `card issue`")
    try:
        cert.verify_directly_issued_by(trust_ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise EnrollmentError("the card certificate was not issued by the given CA") from exc
    if _is_ca(cert):
        raise EnrollmentError("that is a CA certificate, not a card's user-authentication certificate")
    if not isinstance(cert.public_key(), rsa.RSAPublicKey):
        raise EnrollmentError("the card certificate's key is not RSA")
    if not _may_sign(cert):
        raise EnrollmentError("the card certificate's key usage does not allow signatures")
    if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        raise EnrollmentError("the card certificate is not valid today")
    serial = profiles.serial_to_hex(cert.serial_number)
    records = jpki or session
    if records.scalar(select(CardCertificate.id).where(CardCertificate.serial == serial)) is not None:
        raise EnrollmentError(f"a certificate with serial {serial} is already registered")
    trusted = _trusted_ca_row(records, trust_ca, at)
    common_names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    card_id = secrets.token_hex(16)
    record = CardCertificate(
        serial=serial,
        card_id=card_id,
        municipality_code=resident.municipality_code,
        purpose=CertificatePurpose.AUTH.value,
        subject_cn=str(common_names[0].value)[:64] if common_names else "",
        issued_at=at,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        status=CertificateStatus.ACTIVE.value,
        card_file=None,
        enrolled_real_card=True,
        trusted_ca_id=trusted.id,
        certificate_der=cert.public_bytes(serialization.Encoding.DER),
    )
    records.add(record)
    session.add(_holder_record(serial, card_id, resident))
    try:
        records.flush()
        session.flush()
    except IntegrityError as exc:
        raise EnrollmentError(f"a certificate with serial {serial} is already registered") from exc
    log.info("enrolled a real card certificate, serial %s", serial)
    return _summary(record, resident.id)


def card_by_serial(session: Session, serial: str, registry: Session | None = None) -> CardSummary:
    """The summary of one certificate from the JPKI records in `session`, with its holder
    from `registry` (default: the same session). Raises ValueError (not hex),
    CertificateNotFoundError."""
    normalised = profiles.normalise_serial(serial)
    if registry is None:
        row = session.execute(_WITH_HOLDER.where(CardCertificate.serial == normalised)).first()
        if row is None:
            raise CertificateNotFoundError(f"no card certificate with serial {normalised}")
        return _summary(*row)
    record = session.scalar(select(CardCertificate).where(CardCertificate.serial == normalised))
    if record is None:
        raise CertificateNotFoundError(f"no card certificate with serial {normalised}")
    return _summary(record, _holders(registry, [normalised]).get(normalised))


def _holders(registry: Session, serials: Sequence[str]) -> dict[str, str]:
    """serial -> resident id, as the municipalities' store records them."""
    rows = registry.execute(
        select(ResidentCard.serial, ResidentCard.resident_id).where(ResidentCard.serial.in_(serials))
    )
    return dict(rows.tuples().all())
