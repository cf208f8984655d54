"""The transaction state machine through the API: time-outs and cancellations end the
whole transaction, retries are idempotent, steps out of order and rule violations are
refused without harm, one open transaction per kiosk."""

from __future__ import annotations

import api_support
from api_support import JUMINHYO_FEE, MUNICIPALITY, Service, error_code
from sqlalchemy import select

from certserver.db.models.registry import Municipality
from certserver.db.models.transactions import IssuedDocument, KioskTransaction
from certserver.db.session import transaction

pki = api_support.pki  # fixtures
service = api_support.service


def _documents(service: Service, tx_id: str) -> list[IssuedDocument]:
    with transaction(service.factory) as session:
        return list(session.scalars(select(IssuedDocument).where(IssuedDocument.transaction_id == tx_id)))


def _transaction(service: Service, tx_id: str) -> KioskTransaction:
    with transaction(service.factory) as session:
        return session.get(KioskTransaction, tx_id)


def _assert_aborted_whole(service: Service, tx_id: str, state: str) -> None:
    tx = _transaction(service, tx_id)
    assert tx.state == state and tx.open_for_kiosk is None and tx.order_summary is None
    docs = _documents(service, tx_id)
    assert docs, "the order made documents"
    assert all(d.status == "withdrawn" and d.pdf is None for d in docs)


def test_a_timed_out_transaction_is_aborted_whole_and_refuses_everything(service: Service) -> None:
    with service.kiosk() as kiosk:
        tx_id, _ = kiosk.paid(service.pki.cards["toride-000"], copies=2)
        doc_id = kiosk.documents(tx_id).json()["documents"][0]["document_id"]
        service.clock.advance(service.settings.transaction_ttl_seconds + 1)
        answer = kiosk.document(tx_id, doc_id)
        assert answer.status_code == 410
        assert error_code(answer) == "transaction_expired"
        assert b"%PDF" not in answer.content
        for later in (kiosk.status(tx_id), kiosk.documents(tx_id), kiosk.printed(tx_id), kiosk.cancel(tx_id)):
            assert error_code(later) == "transaction_expired"
    _assert_aborted_whole(service, tx_id, "expired")


def test_the_sweep_expires_transactions_whose_kiosk_never_came_back(service: Service) -> None:
    with service.kiosk() as kiosk:
        tx_id, _ = kiosk.paid(service.pki.cards["toride-000"])
    assert service.expire_due() == 0
    service.clock.advance(service.settings.transaction_ttl_seconds + 1)
    assert service.expire_due() == 1
    _assert_aborted_whole(service, tx_id, "expired")


def test_cancel_aborts_the_whole_transaction_at_any_step(service: Service) -> None:
    with service.kiosk() as kiosk:
        tx_id, _ = kiosk.paid(service.pki.cards["toride-000"])
        doc_id = kiosk.documents(tx_id).json()["documents"][0]["document_id"]
        assert kiosk.cancel(tx_id).json()["state"] == "cancelled"
        assert error_code(kiosk.document(tx_id, doc_id)) == "transaction_ended"
        assert error_code(kiosk.pay(tx_id, JUMINHYO_FEE)) == "transaction_ended"
    _assert_aborted_whole(service, tx_id, "cancelled")


def test_starting_again_ends_the_kiosks_previous_open_transaction(service: Service) -> None:
    with service.kiosk() as kiosk:
        old_tx, _ = kiosk.paid(service.pki.cards["toride-000"])
        new_tx = kiosk.start().json()["transaction_id"]
        assert new_tx != old_tx
        assert error_code(kiosk.status(old_tx)) == "transaction_ended"
        assert kiosk.status(new_tx).json()["state"] == "started"
    _assert_aborted_whole(service, old_tx, "cancelled")
    assert _transaction(service, old_tx).end_reason == "superseded"


def test_kiosks_have_their_own_open_transactions(service: Service) -> None:
    with service.kiosk("K1") as one, service.kiosk("K2") as two:
        first = one.start().json()["transaction_id"]
        second = two.start().json()["transaction_id"]
        assert one.status(first).json()["state"] == "started"
        assert two.status(second).json()["state"] == "started"


def test_a_retried_start_with_the_same_idempotency_key_returns_the_same_transaction(service: Service) -> None:
    with service.kiosk() as kiosk:
        first = kiosk.start(headers={"Idempotency-Key": "start-1"})
        again = kiosk.start(headers={"Idempotency-Key": "start-1"})
        assert again.status_code == first.status_code == 201
        assert again.json() == first.json()
        assert again.headers.get("idempotent-replayed") == "true"
        assert kiosk.status(first.json()["transaction_id"]).json()["state"] == "started"


def test_a_retried_order_and_payment_do_not_order_or_pay_twice(service: Service) -> None:
    card = service.pki.cards["toride-000"]
    with service.kiosk() as kiosk:
        tx_id, _ = kiosk.authenticated(card)
        first = kiosk.order(tx_id, copies=2, headers={"Idempotency-Key": "order-1"})
        again = kiosk.order(tx_id, copies=2, headers={"Idempotency-Key": "order-1"})
        assert first.status_code == again.status_code == 200
        assert again.json() == first.json()
        assert len(_documents(service, tx_id)) == 2
        paid = kiosk.pay(tx_id, 2 * JUMINHYO_FEE, headers={"Idempotency-Key": "pay-1"})
        paid_again = kiosk.pay(tx_id, 2 * JUMINHYO_FEE, headers={"Idempotency-Key": "pay-1"})
        assert paid.json() == paid_again.json() and paid_again.json()["state"] == "paid"


def test_an_idempotency_key_reused_for_another_request_is_refused(service: Service) -> None:
    with service.kiosk() as kiosk:
        tx_id, _ = kiosk.authenticated(service.pki.cards["toride-000"])
        assert kiosk.order(tx_id, copies=1, headers={"Idempotency-Key": "k"}).status_code == 200
        answer = kiosk.order(tx_id, copies=3, headers={"Idempotency-Key": "k"})
        assert answer.status_code == 422
        assert error_code(answer) == "idempotency_key_reused"


def test_a_refused_request_is_replayed_as_the_same_refusal(service: Service) -> None:
    with service.kiosk() as kiosk:
        tx_id, _ = kiosk.authenticated(service.pki.cards["toride-000"])
        kiosk.order(tx_id)
        wrong = kiosk.pay(tx_id, 1, headers={"Idempotency-Key": "p"})
        again = kiosk.pay(tx_id, 1, headers={"Idempotency-Key": "p"})
        assert error_code(wrong) == error_code(again) == "amount_mismatch"
        assert kiosk.pay(tx_id, JUMINHYO_FEE).json()["state"] == "paid"


def test_steps_out_of_order_are_refused_and_change_nothing(service: Service) -> None:
    with service.kiosk() as kiosk:
        tx_id = kiosk.start().json()["transaction_id"]
        for early in (kiosk.order(tx_id), kiosk.pay(tx_id, 200), kiosk.documents(tx_id), kiosk.printed(tx_id)):
            assert early.status_code == 409
            assert error_code(early) == "invalid_state"
        assert kiosk.status(tx_id).json()["state"] == "started"


def test_an_order_the_rules_refuse_leaves_the_person_free_to_choose_again(service: Service) -> None:
    with service.kiosk() as kiosk:
        tx_id, _ = kiosk.authenticated(service.pki.cards["toride-000"])
        neighbour = kiosk.order(tx_id, person_ids=["toride-010"])  # another household
        assert neighbour.status_code == 422
        assert error_code(neighbour) == "person_not_allowed"
        too_many = kiosk.order(tx_id, copies=6)  # the municipality allows 5
        assert error_code(too_many) == "too_many_copies"
        assert kiosk.status(tx_id).json()["state"] == "authenticated"
        assert kiosk.order(tx_id, person_ids=["toride-000", "toride-001"]).status_code == 200
    assert not any(d.status == "withdrawn" for d in _documents(service, tx_id))


def test_a_stopped_municipality_issues_nothing(service: Service) -> None:
    with transaction(service.factory) as session:
        municipality = session.get(Municipality, MUNICIPALITY)
        municipality.stopped, municipality.stop_reason = True, "システム点検"
    with service.kiosk() as kiosk:
        tx_id, answer = kiosk.authenticated(service.pki.cards["toride-000"])
        home = answer["menu"]["municipalities"][0]
        assert home["open"] is False and home["closed_reason"] == "municipality_stopped"
        refused = kiosk.order(tx_id)
        assert refused.status_code == 422
        assert error_code(refused) == "municipality_stopped"


def test_payment_must_match_the_fee(service: Service) -> None:
    with service.kiosk() as kiosk:
        tx_id, _ = kiosk.authenticated(service.pki.cards["toride-000"])
        kiosk.order(tx_id, copies=3)
        assert error_code(kiosk.pay(tx_id, 3 * JUMINHYO_FEE - 1)) == "amount_mismatch"
        assert error_code(kiosk.pay(tx_id, 3 * JUMINHYO_FEE + 100)) == "amount_mismatch"
        assert kiosk.pay(tx_id, 3 * JUMINHYO_FEE).json()["paid_yen"] == 3 * JUMINHYO_FEE


def test_certificate_numbers_are_unique_per_issuer_across_transactions(service: Service) -> None:
    numbers: list[str] = []
    with service.kiosk("K1") as one, service.kiosk("K2") as two:
        for kiosk, resident in ((one, "toride-000"), (two, "toride-010"), (one, "toride-020")):
            tx_id, ordered = kiosk.paid(service.pki.cards[resident], copies=2)
            numbers += ordered["order"]["certificate_numbers"]
            kiosk.download_all(tx_id)
            kiosk.printed(tx_id)
    # Consecutive from the issuer's first: the copies of one order, then the next order's.
    assert numbers == [f"{MUNICIPALITY}-{n:08d}" for n in range(1, 7)]
    issued = [d for n in numbers for d in _by_number(service, n)]
    assert all(d.status == "issued" and d.pdf is None and len(d.content_sha256) == 64 for d in issued)


def _by_number(service: Service, number: str) -> list[IssuedDocument]:
    with transaction(service.factory) as session:
        return list(session.scalars(select(IssuedDocument).where(IssuedDocument.certificate_number == number)))
