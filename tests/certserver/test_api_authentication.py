"""Card authentication and kiosk credentials at the API: what is accepted, and that every
kind of wrong card, replayed signature or foreign kiosk is refused with its own code."""

from __future__ import annotations

import base64
import datetime as dt

import api_support
import httpx
from api_support import Card, KioskClient, Service, error_code
from sqlalchemy import update

from certserver.db.models.pki import CardCertificate
from certserver.db.session import transaction
from certserver.pki.issuance import IssuedCertificate
from certserver.pki.profiles import Purpose
from certserver.services.kiosks import KioskCredential
from konbini_testkit.cards import _leaf, _rsa_key
from konbini_testkit.cards import test_ca as throwaway_ca

pki = api_support.pki  # fixtures
service = api_support.service_over_each_link  # in-process, and behind the LGWAN link


def _start(kiosk: KioskClient) -> tuple[str, str]:
    body = kiosk.start().json()
    return body["transaction_id"], body["challenge"]


def test_a_registered_card_that_signs_the_challenge_is_accepted(service: Service) -> None:
    with service.kiosk() as kiosk:
        tx_id, challenge = _start(kiosk)
        answer = kiosk.authenticate(tx_id, service.pki.cards["toride-010"], challenge)
        assert answer.status_code == 200
        assert answer.json()["state"] == "authenticated"
        assert kiosk.status(tx_id).json()["state"] == "authenticated"


def test_a_signature_over_anything_but_the_challenge_is_refused(service: Service) -> None:
    card = service.pki.cards["toride-000"]
    with service.kiosk() as kiosk:
        tx_id, challenge = _start(kiosk)
        forged = card.sign(b"\x00" * 32)
        answer = kiosk.authenticate(tx_id, card, challenge, signature=forged)
        assert answer.status_code == 403
        assert error_code(answer) == "signature_invalid"
        # The attempt ended the transaction: the kiosk starts again.
        assert error_code(kiosk.status(tx_id)) == "transaction_ended"


def test_another_cards_signature_is_refused(service: Service) -> None:
    with service.kiosk() as kiosk:
        tx_id, challenge = _start(kiosk)
        stolen = service.pki.cards["toride-010"].sign(base64.b64decode(challenge))
        answer = kiosk.authenticate(tx_id, service.pki.cards["toride-000"], challenge, signature=stolen)
        assert error_code(answer) == "signature_invalid"


def test_a_challenge_can_be_used_only_once(service: Service) -> None:
    card = service.pki.cards["toride-000"]
    with service.kiosk() as kiosk:
        tx_id, challenge = _start(kiosk)
        assert kiosk.authenticate(tx_id, card, challenge).status_code == 200
        replay = kiosk.authenticate(tx_id, card, challenge)
        assert replay.status_code == 409
        assert error_code(replay) == "challenge_used"


def test_a_signature_from_one_transaction_is_worthless_in_another(service: Service) -> None:
    card = service.pki.cards["toride-000"]
    with service.kiosk() as kiosk:
        _first_tx, first_challenge = _start(kiosk)
        signature = card.sign(base64.b64decode(first_challenge))
        second_tx, second_challenge = _start(kiosk)
        answer = kiosk.authenticate(second_tx, card, second_challenge, signature=signature)
        assert error_code(answer) == "signature_invalid"


def test_a_challenge_expires_after_its_ttl(service: Service) -> None:
    card = service.pki.cards["toride-000"]
    with service.kiosk() as kiosk:
        tx_id, challenge = _start(kiosk)
        service.clock.advance(service.settings.challenge_ttl_seconds + 1)
        answer = kiosk.authenticate(tx_id, card, challenge)
        assert answer.status_code == 410
        assert error_code(answer) == "challenge_expired"


def test_an_expired_certificate_is_refused(service: Service) -> None:
    card = service.pki.cards["toride-000"]
    service.clock.set(card.certificate.certificate.not_valid_after_utc + dt.timedelta(days=1))
    with service.kiosk() as kiosk:
        tx_id, challenge = _start(kiosk)
        answer = kiosk.authenticate(tx_id, card, challenge)
        assert answer.status_code == 403
        assert error_code(answer) == "certificate_expired"


def test_a_revoked_certificate_is_refused(service: Service) -> None:
    card = service.pki.cards["toride-000"]
    with transaction(service.factory) as session:
        session.execute(
            update(CardCertificate)
            .where(CardCertificate.serial == card.serial)
            .values(
                status="revoked", revoked_at=service.clock() - dt.timedelta(hours=1), revocation_reason="keyCompromise"
            )
        )
    with service.kiosk() as kiosk:
        tx_id, challenge = _start(kiosk)
        answer = kiosk.authenticate(tx_id, card, challenge)
        assert answer.status_code == 403
        assert error_code(answer) == "certificate_revoked"


def test_a_certificate_of_an_unknown_ca_is_refused(service: Service) -> None:
    key = _rsa_key(7)
    from cryptography import x509

    cert = x509.load_der_x509_certificate(_leaf(throwaway_ca("auth"), key, "STRANGER"))
    stranger = Card("nobody", IssuedCertificate(Purpose.AUTH, cert, key))
    with service.kiosk() as kiosk:
        tx_id, challenge = _start(kiosk)
        answer = kiosk.authenticate(tx_id, stranger, challenge)
        assert answer.status_code == 403
        assert error_code(answer) == "certificate_unknown_ca"


def test_requests_without_or_with_a_wrong_kiosk_credential_are_refused(service: Service) -> None:
    real = service.add_kiosk("K1")
    wrong_secret = KioskCredential("K1", real.secret[:-2] + "xx")
    unknown = KioskCredential("K9", real.secret)
    for credential in (None, wrong_secret, unknown):
        with KioskClient(service.url, credential) as kiosk:
            answer = kiosk.start()
            assert answer.status_code == 401
            assert error_code(answer) == "unauthorized_kiosk"
    for header in ("Basic abc", "Bearer", "Bearer K1", f"Bearer :{real.secret}", "Bearer K1:"):
        answer = httpx.post(f"{service.url}/api/v1/transactions", headers={"Authorization": header})
        assert answer.status_code == 401, header


def test_another_kiosk_cannot_see_or_touch_a_transaction_or_its_documents(service: Service) -> None:
    card = service.pki.cards["toride-000"]
    with service.kiosk("K1") as mine, service.kiosk("K2") as theirs:
        tx_id, _ = mine.paid(card)
        doc_id = mine.documents(tx_id).json()["documents"][0]["document_id"]
        for answer in (
            theirs.status(tx_id),
            theirs.documents(tx_id),
            theirs.document(tx_id, doc_id),
            theirs.pay(tx_id, 200),
            theirs.printed(tx_id),
            theirs.cancel(tx_id),
            theirs.order(tx_id),
        ):
            assert answer.status_code == 404
            assert error_code(answer) == "transaction_not_found"
            assert b"%PDF" not in answer.content
        # Untouched for its own kiosk.
        assert mine.document(tx_id, doc_id).status_code == 200


def test_an_unknown_transaction_or_document_id_is_just_not_found(service: Service) -> None:
    card = service.pki.cards["toride-000"]
    with service.kiosk("K1") as kiosk:
        tx_id, _ = kiosk.paid(card)
        assert error_code(kiosk.status("A" * 43)) == "transaction_not_found"
        assert error_code(kiosk.document(tx_id, "B" * 43)) == "document_not_found"


def test_a_document_of_another_open_transaction_is_not_served_under_ones_own_transaction(service: Service) -> None:
    with service.kiosk("K1") as mine, service.kiosk("K2") as theirs:
        my_tx, _ = mine.paid(service.pki.cards["toride-000"])
        their_tx, _ = theirs.paid(service.pki.cards["toride-010"])
        their_doc = theirs.documents(their_tx).json()["documents"][0]["document_id"]
        answer = mine.document(my_tx, their_doc)
        assert answer.status_code == 404
        assert error_code(answer) == "document_not_found"
        assert theirs.document(their_tx, their_doc).status_code == 200
