"""Making one card's keys and certificates (no database, no files: see services/cards.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from certserver.pki import entropy, profiles
from certserver.pki.ca import CaBundle
from certserver.pki.profiles import CardHolder, Purpose
from konbini_common.japan import JST, age_on


@dataclass(frozen=True)
class IssuedCertificate:
    """A card certificate with its freshly generated test key."""

    purpose: Purpose
    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def serial(self) -> str:
        return profiles.serial_to_hex(self.certificate.serial_number)

    @property
    def common_name(self) -> str:
        return str(self.certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value)

    def private_key_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


@dataclass(frozen=True)
class CardCredentials:
    auth: IssuedCertificate
    sign: IssuedCertificate | None  # None for a holder under 15


def _new_key() -> rsa.RSAPrivateKey:
    return entropy.rsa_key(profiles.RSA_KEY_SIZE, profiles.RSA_PUBLIC_EXPONENT)


def issue_certificate(
    ca: CaBundle,
    purpose: Purpose,
    *,
    holder: CardHolder,
    municipality_code: str,
    issued_at: dt.datetime,
    locality: str | None = None,
    stay_ends_on: dt.date | None = None,
) -> IssuedCertificate:
    """One card certificate of `purpose` with a new RSA-2048 key, valid until the holder's
    5th birthday after `issued_at` (23:59:59 JST), or a foreign resident's end of the period
    of stay (`stay_ends_on`) if earlier. `locality`: the municipality in romaji, written into a
    signing certificate's subject."""
    issuer = ca.for_purpose(purpose)
    not_before, not_after = profiles.card_validity(holder.birth_date, issued_at, stay_ends_on)
    # A CA never certifies beyond its own expiry.
    not_after = min(not_after, issuer.cert.not_valid_after_utc)
    key = _new_key()
    cert = profiles.build_card_certificate(
        purpose,
        public_key=key.public_key(),
        issuer_key=issuer.key,
        issuer_cert=issuer.cert,
        common_name=profiles.opaque_common_name(municipality_code),
        serial=profiles.new_serial_number(),
        not_before=not_before,
        not_after=not_after,
        holder=holder if purpose is Purpose.SIGN else None,
        locality=locality,
    )
    return IssuedCertificate(purpose, cert, key)


def issue_card_credentials(
    ca: CaBundle,
    *,
    holder: CardHolder,
    municipality_code: str,
    issued_at: dt.datetime,
    locality: str | None = None,
    stay_ends_on: dt.date | None = None,
) -> CardCredentials:
    """Both certificates of a new card; none for signing when the holder is under 15.
    `stay_ends_on`: a foreign resident's last day of the period of stay, which neither
    certificate outlives."""
    auth = issue_certificate(
        ca,
        Purpose.AUTH,
        holder=holder,
        municipality_code=municipality_code,
        issued_at=issued_at,
        stay_ends_on=stay_ends_on,
    )
    age = age_on(holder.birth_date, issued_at.astimezone(JST).date())
    sign = None
    if age >= profiles.SIGN_CERT_MIN_AGE:
        sign = issue_certificate(
            ca,
            Purpose.SIGN,
            holder=holder,
            municipality_code=municipality_code,
            issued_at=issued_at,
            locality=locality,
            stay_ends_on=stay_ends_on,
        )
    return CardCredentials(auth, sign)
