"""Certificate revocation lists of the two card CAs, built from the registry of card
certificates (the same rows the OCSP responder and card authentication read)."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from sqlalchemy import select
from sqlalchemy.orm import Session

from certserver.db.models.pki import CardCertificate, CertificateStatus
from certserver.pki.ca import CaBundle
from certserver.pki.profiles import Purpose
from certserver.pki.revocation import revocation_date, x509_reason

CRL_LIFETIME = dt.timedelta(days=1)  # nextUpdate; a fresh CRL is built on every request anyway


def build_crl(
    session: Session, ca: CaBundle, purpose: Purpose | str, now: dt.datetime
) -> x509.CertificateRevocationList:
    """The CRL of the `purpose` CA ("auth" / "sign") listing every certificate it issued and
    revoked, as of `now` (the service clock's reading). Raises ValueError for an unknown
    purpose."""
    issuer = ca.for_purpose(purpose)
    this_update = now.astimezone(dt.UTC).replace(microsecond=0)
    revoked = session.scalars(
        select(CardCertificate)
        .where(
            CardCertificate.purpose == str(Purpose(purpose)),
            CardCertificate.status == CertificateStatus.REVOKED.value,
            CardCertificate.enrolled_real_card.is_(False),
        )
        .order_by(CardCertificate.id)
    )
    ski = issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(this_update)
        .next_update(this_update + CRL_LIFETIME)
        # Seconds since the epoch only grow, so the number is monotonic without shared state.
        .add_extension(x509.CRLNumber(int(this_update.timestamp())), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    )
    for record in revoked:
        assert record.revoked_at is not None  # guaranteed by ck_card_certificates_revoked_has_time
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(int(record.serial, 16))
            .revocation_date(revocation_date(record.revoked_at, this_update))
        )
        reason = x509_reason(record.revocation_reason)
        if reason is not x509.ReasonFlags.unspecified:  # RFC 5280 §5.3.1: omit "unspecified"
            entry = entry.add_extension(x509.CRLReason(reason), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    return builder.sign(issuer.key, hashes.SHA256())


def crl_der(session: Session, ca: CaBundle, purpose: Purpose | str, now: dt.datetime) -> bytes:
    """`build_crl` as DER bytes."""
    return build_crl(session, ca, purpose, now).public_bytes(serialization.Encoding.DER)
