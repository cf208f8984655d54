"""A revocation is effective from the moment it is made, whatever date it carries and whatever
the service pretends: a card revoked before authentication, between order and payment, or
after payment gets no document, and the transaction ends whole."""

from __future__ import annotations

import datetime as dt
import json

import api_support
from api_support import Card, KioskClient, Service, error_code
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from sqlalchemy import select

from certserver.db.models.transactions import AuditEntry, IssuedDocument, KioskTransaction
from certserver.db.session import transaction
from certserver.services import cards

pki = api_support.pki  # fixtures
service = api_support.service


def _revoke(service: Service, card: Card, at: dt.datetime) -> None:
    """What `certserver card revoke --reason stolen` writes, stamped `at`."""
    with transaction(service.factory) as session:
        cards.revoke_card(session, card.serial, "stolen", now=at)


def _ended_whole(service: Service, tx_id: str) -> tuple[KioskTransaction, list[IssuedDocument]]:
    with transaction(service.factory) as session:
        tx = session.get(KioskTransaction, tx_id)
        docs = list(session.scalars(select(IssuedDocument).where(IssuedDocument.transaction_id == tx_id)))
        session.expunge_all()
    assert tx is not None and tx.state == "failed" and tx.open_for_kiosk is None
    assert docs and all(d.status == "withdrawn" and d.pdf is None for d in docs)
    return tx, docs


def _audit(service: Service, tx_id: str) -> list[tuple[str, str, str]]:
    with transaction(service.factory) as session:
        return [
            (e.action, e.outcome, e.detail)
            for e in session.scalars(
                select(AuditEntry).where(AuditEntry.transaction_id == tx_id).order_by(AuditEntry.seq)
            )
        ]


def test_a_card_revoked_at_a_later_date_than_the_service_clock_is_refused_at_authentication(service: Service) -> None:
    """The stolen card of the report: revoked from a shell whose clock was ahead of the
    service's pretended time. The revocation's date is later than the service's now, and it
    is in force all the same."""
    card = service.pki.cards["toride-000"]
    _revoke(service, card, service.clock() + dt.timedelta(days=3))
    with service.kiosk() as kiosk:
        started = kiosk.start().json()
        answer = kiosk.authenticate(started["transaction_id"], card, started["challenge"])
    assert answer.status_code == 403
    assert error_code(answer) == "certificate_revoked"


def test_ocsp_says_revoked_for_a_revocation_dated_after_the_answer_and_dates_it_no_later(service: Service) -> None:
    card = service.pki.cards["toride-001"]
    _revoke(service, card, service.clock() + dt.timedelta(days=3))
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(card.certificate.certificate, service.pki.ca.auth_ca.cert, hashes.SHA256())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    with KioskClient(service.url, None) as client:
        answer = ocsp.load_der_ocsp_response(
            client.http.post("/pki/ocsp", content=request, headers={"content-type": "application/ocsp-request"}).content
        )
        crl = x509.load_der_x509_crl(client.http.get("/pki/crl/auth.crl").content)
    assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_time_utc == answer.this_update_utc
    entry = crl.get_revoked_certificate_by_serial_number(card.certificate.certificate.serial_number)
    assert entry is not None and entry.revocation_date_utc == crl.last_update_utc


def test_crl_and_ocsp_are_dated_by_the_service_clock(service: Service) -> None:
    """The service's clock is days ahead of the host's here (api_support.MovableClock)."""
    service.clock.advance(7 * 24 * 3600)
    now = service.clock().replace(microsecond=0)
    card = service.pki.cards["toride-002"]
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(card.certificate.certificate, service.pki.ca.auth_ca.cert, hashes.SHA1())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    with KioskClient(service.url, None) as client:
        crl = x509.load_der_x509_crl(client.http.get("/pki/crl/auth.crl").content)
        answer = ocsp.load_der_ocsp_response(
            client.http.post("/pki/ocsp", content=request, headers={"content-type": "application/ocsp-request"}).content
        )
    assert crl.last_update_utc == now
    assert answer.this_update_utc == now
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD


def test_a_card_revoked_between_order_and_payment_is_refused_at_payment(service: Service) -> None:
    card = service.pki.cards["toride-010"]
    with service.kiosk() as kiosk:
        tx_id, _ = kiosk.authenticated(card)
        ordered = kiosk.order(tx_id)
        assert ordered.status_code == 200, ordered.text
        _revoke(service, card, service.clock())
        paid = kiosk.pay(tx_id, ordered.json()["fee_total_yen"])
        assert paid.status_code == 403
        assert error_code(paid) == "certificate_revoked"
        assert error_code(kiosk.documents(tx_id)) == "transaction_ended"
    tx, _ = _ended_whole(service, tx_id)
    assert tx.paid_yen is None and tx.end_reason == "payment:certificate_revoked"
    assert ("payment", "certificate_revoked", "{}") in _audit(service, tx_id)


def test_a_card_revoked_after_payment_is_refused_at_release_and_the_fee_is_owed_back(service: Service) -> None:
    card = service.pki.cards["toride-011"]
    with service.kiosk() as kiosk:
        tx_id, ordered = kiosk.paid(card)
        _revoke(service, card, service.clock())
        listed = kiosk.documents(tx_id)
        assert listed.status_code == 403
        assert error_code(listed) == "certificate_revoked"
        assert error_code(kiosk.printed(tx_id)) == "transaction_ended"
    tx, _ = _ended_whole(service, tx_id)
    fee = ordered["fee_total_yen"]
    assert tx.paid_yen == tx.refunded_yen == fee and tx.end_reason == "release:certificate_revoked"
    refusal = [
        detail
        for action, outcome, detail in _audit(service, tx_id)
        if (action, outcome) == ("release", "certificate_revoked")
    ]
    assert [json.loads(d) for d in refusal] == [{"refund_due_yen": fee}]


def test_a_card_revoked_between_listing_and_fetching_a_document_gets_no_pdf(service: Service) -> None:
    card = service.pki.cards["toride-012"]
    with service.kiosk() as kiosk:
        tx_id, _ = kiosk.paid(card)
        listed = kiosk.documents(tx_id)
        assert listed.status_code == 200, listed.text
        doc_id = listed.json()["documents"][0]["document_id"]
        _revoke(service, card, service.clock())
        fetched = kiosk.document(tx_id, doc_id)
        assert fetched.status_code == 403
        assert error_code(fetched) == "certificate_revoked"
    tx, _ = _ended_whole(service, tx_id)
    assert tx.end_reason == "fetch_document:certificate_revoked"
