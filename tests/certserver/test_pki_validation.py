"""Card authentication checks: a good card is accepted and says whose it is; every kind of
bad certificate or signature is refused with its own stable code (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pki_support import (  # noqa: F401 - fixtures
    Db,
    add_resident,
    ca_bundle,
    card_json,
    db,
    der,
    external_ca_and_card,
    foreign_ca_with_same_names,
    forge_like,
    sqlite_only,
)
from sqlalchemy import delete, select

from certserver.db.models.pki import CardCertificate
from certserver.db.models.registry import ResidentCard
from certserver.db.session import transaction
from certserver.pki import validation
from certserver.pki.ca import CaBundle
from certserver.pki.issuance import issue_card_credentials
from certserver.services import cards
from certserver.services.card_holders import holder_of_card
from certserver.services.cards import holder_of

NOW = dt.datetime(2026, 11, 26, 3, 0, tzinfo=dt.UTC)
CHALLENGE = bytes(range(32))


class Card:
    """What a kiosk gets from a card: the auth certificate and signatures by its key."""

    def __init__(self, path: Path) -> None:
        raw = card_json(path)
        self.cert_der = base64.b64decode(raw["jpki"]["auth_certificate"])
        self.sign_cert_der = base64.b64decode(raw["jpki"]["sign_certificate"])
        key = serialization.load_pem_private_key(raw["jpki"]["auth_private_key"].encode(), None)
        assert isinstance(key, rsa.RSAPrivateKey)
        self.key = key

    def sign(self, challenge: bytes) -> bytes:
        return self.key.sign(challenge, padding.PKCS1v15(), hashes.SHA256())


@pytest.fixture
def card(db: Db, ca_bundle: CaBundle, tmp_path: Path) -> Card:
    with transaction(db.factory) as session:
        add_resident(session)
    with transaction(db.factory) as session:
        cards.issue_card(
            session, ca_bundle, "toride-0001", pin="1234", password="ABC123", out=tmp_path / "card.json", now=NOW
        )
    return Card(tmp_path / "card.json")


def _validate(db: Db, ca: CaBundle, der: bytes, at: dt.datetime = NOW + dt.timedelta(hours=1)):
    with db.factory() as session:
        return validation.validate_card_certificate(session, ca, der, at)


def _holder(db: Db, accepted: validation.ValidatedCard) -> str:
    """Who the applying municipality says holds the accepted card."""
    with db.factory() as session:
        return holder_of_card(session, accepted)


def _refused(db: Db, ca: CaBundle, der: bytes, at: dt.datetime = NOW + dt.timedelta(hours=1)) -> str:
    with pytest.raises(validation.CardCertificateError) as caught:
        _validate(db, ca, der, at)
    error = caught.value
    assert error.message_ja and error.message_en  # something a person at the kiosk can read
    return error.code


def test_good_card_is_accepted_and_names_its_resident(db: Db, ca_bundle: CaBundle, card: Card) -> None:
    accepted = _validate(db, ca_bundle, card.cert_der)
    assert (accepted.municipality_code, _holder(db, accepted)) == ("08217", "toride-0001")
    assert accepted.not_after == dt.datetime(2031, 2, 17, 14, 59, 59, tzinfo=dt.UTC)
    with db.factory() as session:
        assert accepted.serial == cards.list_cards(session, "toride-0001")[0].serial
    validation.verify_challenge_signature(card.cert_der, CHALLENGE, card.sign(CHALLENGE))


def test_the_jpki_record_names_the_applying_municipality_and_only_its_record_names_the_holder(
    db: Db, ca_bundle: CaBundle, card: Card
) -> None:
    """分散管理: the JPKI service's row of a certificate carries no resident; the municipality
    that applied for the card keeps who holds it."""
    accepted = _validate(db, ca_bundle, card.cert_der)
    with db.factory() as session:
        jpki_columns = set(CardCertificate.__table__.columns.keys())
        record = session.scalar(select(CardCertificate).where(CardCertificate.serial == accepted.serial))
        holder = session.get(ResidentCard, accepted.serial)
    assert "resident_id" not in jpki_columns
    assert record is not None and record.municipality_code == "08217"
    assert holder is not None and (holder.resident_id, holder.municipality_code) == ("toride-0001", "08217")


def test_a_valid_card_its_municipality_holds_no_record_of_is_not_registered(
    db: Db, ca_bundle: CaBundle, card: Card
) -> None:
    accepted = _validate(db, ca_bundle, card.cert_der)
    with transaction(db.factory) as session:
        session.execute(delete(ResidentCard).where(ResidentCard.serial == accepted.serial))
    with pytest.raises(validation.CertificateNotRegisteredError), db.factory() as session:
        holder_of_card(session, accepted)
    # Another municipality's record of the same serial does not answer for the one that applied.
    elsewhere = validation.ValidatedCard(accepted.serial, "08220", accepted.not_after)
    with transaction(db.factory) as session:
        session.add(
            ResidentCard(serial=accepted.serial, card_id="x", resident_id="toride-0001", municipality_code="08217")
        )
    with pytest.raises(validation.CertificateNotRegisteredError), db.factory() as session:
        holder_of_card(session, elsewhere)


def test_signature_over_another_challenge_is_refused(card: Card) -> None:
    with pytest.raises(validation.SignatureInvalidError) as caught:
        validation.verify_challenge_signature(card.cert_der, CHALLENGE, card.sign(CHALLENGE[::-1]))
    assert caught.value.code == "signature_invalid"


def test_signature_by_another_key_is_refused(card: Card) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signature = other.sign(CHALLENGE, padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(validation.SignatureInvalidError):
        validation.verify_challenge_signature(card.cert_der, CHALLENGE, signature)
    with pytest.raises(validation.SignatureInvalidError):
        validation.verify_challenge_signature(card.cert_der, CHALLENGE, b"\x00" * 256)


def test_expired_certificate_is_refused(db: Db, ca_bundle: CaBundle, card: Card) -> None:
    after = dt.datetime(2031, 2, 17, 15, 0, 0, tzinfo=dt.UTC)  # 00:00 JST the next day
    assert _refused(db, ca_bundle, card.cert_der, after) == "certificate_expired"
    assert _validate(db, ca_bundle, card.cert_der, after - dt.timedelta(seconds=61)).municipality_code == "08217"


def test_not_yet_valid_certificate_is_refused(db: Db, ca_bundle: CaBundle, card: Card) -> None:
    assert _refused(db, ca_bundle, card.cert_der, NOW - dt.timedelta(seconds=1)) == "certificate_not_yet_valid"


def test_revoked_certificate_is_refused(db: Db, ca_bundle: CaBundle, card: Card) -> None:
    with db.factory() as session:
        serial = cards.list_cards(session)[0].serial
    with transaction(db.factory) as session:
        cards.revoke_card(session, serial, "lost", now=NOW + dt.timedelta(minutes=30))
    assert _refused(db, ca_bundle, card.cert_der) == "certificate_revoked"


def test_certificate_from_another_ca_with_the_same_names_is_refused(db: Db, ca_bundle: CaBundle, card: Card) -> None:
    key, _ = foreign_ca_with_same_names(ca_bundle)
    forged = forge_like(card.cert_der, key)  # same subject, issuer, serial and key; other signer
    assert _refused(db, ca_bundle, forged) == "certificate_unknown_ca"


def test_signing_certificate_cannot_authenticate(db: Db, ca_bundle: CaBundle, card: Card) -> None:
    assert _refused(db, ca_bundle, card.sign_cert_der) == "certificate_unknown_ca"


def test_certificate_of_our_ca_with_an_unregistered_serial_is_refused(db: Db, ca_bundle: CaBundle, card: Card) -> None:
    with db.factory() as session:
        from certserver.db.models.registry import Resident

        holder = holder_of(session.get(Resident, "toride-0001"))
    stray = issue_card_credentials(ca_bundle, holder=holder, municipality_code="08217", issued_at=NOW)
    assert _refused(db, ca_bundle, stray.auth.der) == "certificate_not_registered"


def test_registered_serial_on_another_certificate_is_refused(db: Db, ca_bundle: CaBundle, card: Card) -> None:
    # The CA's own key signing a second certificate with a registered serial but another key
    # (what a CA compromise or a bug would produce) is still not the registered card.
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    twin = forge_like(card.cert_der, ca_bundle.auth_ca.key, public_key=other_key.public_key())  # type: ignore[arg-type]
    assert _refused(db, ca_bundle, twin) == "certificate_not_registered"


@sqlite_only
@pytest.mark.parametrize("garbage", [b"", b"\x30\x82\x01\x00", b"not a certificate", b"\x00" * 300])
def test_malformed_certificate_is_refused(db: Db, ca_bundle: CaBundle, garbage: bytes) -> None:
    assert _refused(db, ca_bundle, garbage) == "certificate_malformed"


def test_each_refusal_has_its_own_code() -> None:
    classes = [
        validation.CertificateMalformedError,
        validation.CertificateUnknownCaError,
        validation.CertificateExpiredError,
        validation.CertificateNotYetValidError,
        validation.CertificateRevokedError,
        validation.CertificateNotRegisteredError,
        validation.SignatureInvalidError,
    ]
    codes = [c.code for c in classes]
    assert codes == [
        "certificate_malformed",
        "certificate_unknown_ca",
        "certificate_expired",
        "certificate_not_yet_valid",
        "certificate_revoked",
        "certificate_not_registered",
        "signature_invalid",
    ]
    assert all(issubclass(c, validation.CardCertificateError) for c in classes)


# -- enrolled real cards --------------------------------------------------------------------


def test_enrolled_real_card_is_accepted_until_revoked(db: Db, ca_bundle: CaBundle) -> None:
    ca_cert, card_cert, card_key = external_ca_and_card(NOW)
    with transaction(db.factory) as session:
        add_resident(session)
    # Trusting the CA alone accepts nothing: only the enrolled certificate.
    with transaction(db.factory) as session:
        cards.enroll_real_card(session, ca_bundle, "toride-0001", der(card_cert), der(ca_cert), now=NOW)
    accepted = _validate(db, ca_bundle, der(card_cert))
    assert _holder(db, accepted) == "toride-0001" and accepted.serial == "0705D990"
    signature = card_key.sign(CHALLENGE, padding.PKCS1v15(), hashes.SHA256())
    validation.verify_challenge_signature(der(card_cert), CHALLENGE, signature)
    with transaction(db.factory) as session:
        cards.revoke_card(session, "0705D990", "returned", now=NOW)
    assert _refused(db, ca_bundle, der(card_cert)) == "certificate_revoked"


def test_unenrolled_certificate_under_a_trusted_external_ca_is_not_registered(db: Db, ca_bundle: CaBundle) -> None:
    ca_cert, card_cert, _ = external_ca_and_card(NOW)
    with transaction(db.factory) as session:
        add_resident(session)
    ca_bundle_with_anchor = CaBundle(
        ca_bundle.auth_ca, ca_bundle.sign_ca, ca_bundle.document_ca, trusted_external_auth_cas=[ca_cert]
    )
    assert _refused(db, ca_bundle_with_anchor, der(card_cert)) == "certificate_not_registered"
    assert _refused(db, ca_bundle, der(card_cert)) == "certificate_unknown_ca"
