"""What happens to a paid transaction whose outcome the service never heard, or heard late:
paper that may be in a person's hand stays valid, money reconciles, and the kiosk's late
report settles it.

A released transaction that ends before the kiosk reports (time-out, superseded by the
kiosk's next start after a crash) ends `released_unconfirmed`: the documents the kiosk
downloaded are issued, the others withdrawn. A paid transaction that ends unprinted records
its refund. `printed` needs every document downloaded; `cancel` after release means
"printing failed, the fee was returned".
"""

from __future__ import annotations

import api_support
from api_support import Service, error_code
from sqlalchemy import select

from certserver.centre.transactions import certificate_status
from certserver.db.models.transactions import IssuedDocument, KioskTransaction
from certserver.db.session import transaction

pki = api_support.pki  # fixtures
service = api_support.service


def _transaction(service: Service, tx_id: str) -> KioskTransaction:
    with transaction(service.factory) as session:
        return session.get(KioskTransaction, tx_id)


def _statuses(service: Service, tx_id: str) -> list[str]:
    with transaction(service.factory) as session:
        docs = session.scalars(
            select(IssuedDocument).where(IssuedDocument.transaction_id == tx_id).order_by(IssuedDocument.copy_index)
        )
        return [d.status for d in docs]


def _numbers(service: Service, tx_id: str) -> list[str]:
    with transaction(service.factory) as session:
        return list(
            session.scalars(
                select(IssuedDocument.certificate_number)
                .where(IssuedDocument.transaction_id == tx_id)
                .order_by(IssuedDocument.copy_index)
            )
        )


def _no_pdf_kept(service: Service, tx_id: str) -> bool:
    with transaction(service.factory) as session:
        return all(
            d.pdf is None for d in session.scalars(select(IssuedDocument).where(IssuedDocument.transaction_id == tx_id))
        )


def test_printed_is_refused_until_every_document_was_downloaded(service: Service) -> None:
    with service.kiosk() as kiosk:
        tx_id, _ = kiosk.paid(service.pki.cards["toride-000"], copies=2)
        refused = kiosk.printed(tx_id)
        assert refused.status_code == 409 and error_code(refused) == "documents_not_fetched"
        listed = kiosk.documents(tx_id).json()["documents"]
        kiosk.document(tx_id, listed[0]["document_id"])
        assert error_code(kiosk.printed(tx_id)) == "documents_not_fetched"
        kiosk.document(tx_id, listed[1]["document_id"])
        assert kiosk.printed(tx_id).json()["state"] == "printed"
    assert _statuses(service, tx_id) == ["issued", "issued"]


def test_a_released_transaction_that_times_out_keeps_its_downloaded_documents_issued(service: Service) -> None:
    with service.kiosk() as kiosk:
        tx_id, _ = kiosk.paid(service.pki.cards["toride-000"], copies=2)
        listed = kiosk.documents(tx_id).json()["documents"]
        kiosk.document(tx_id, listed[0]["document_id"])  # the kiosk died printing the second
    service.clock.advance(service.settings.transaction_ttl_seconds + 1)
    assert service.expire_due() == 1
    tx = _transaction(service, tx_id)
    assert (tx.state, tx.end_reason, tx.refunded_yen) == ("released_unconfirmed", "timeout", None)
    assert _statuses(service, tx_id) == ["issued", "withdrawn"]
    assert _no_pdf_kept(service, tx_id)
    first, second = _numbers(service, tx_id)
    with transaction(service.factory) as session:
        assert certificate_status(session, first) == "issued"
        assert certificate_status(session, second) == "withdrawn"


def test_the_kiosks_next_start_does_not_withdraw_what_it_downloaded(service: Service) -> None:
    with service.kiosk() as kiosk:
        tx_id, _ = kiosk.paid(service.pki.cards["toride-000"])
        kiosk.download_all(tx_id)
        assert kiosk.start().status_code == 201  # restarted without reporting: supersedes
    tx = _transaction(service, tx_id)
    assert (tx.state, tx.end_reason) == ("released_unconfirmed", "superseded")
    assert _statuses(service, tx_id) == ["issued"]


def test_a_late_printed_report_settles_an_unconfirmed_transaction_as_printed(service: Service) -> None:
    with service.kiosk() as kiosk:
        tx_id, _ = kiosk.paid(service.pki.cards["toride-000"])
        kiosk.download_all(tx_id)
        service.clock.advance(service.settings.transaction_ttl_seconds + 1)
        late = kiosk.printed(tx_id)  # before the sweep: the report ends it and settles it
        assert late.status_code == 200, late.text
        assert late.json()["state"] == "printed"
    tx = _transaction(service, tx_id)
    assert (tx.state, tx.end_reason, tx.refunded_yen) == ("printed", "printed_reported_late", None)
    assert _statuses(service, tx_id) == ["issued"]


def test_a_late_cancel_withdraws_an_unconfirmed_transactions_documents_and_records_the_refund(service: Service) -> None:
    with service.kiosk() as kiosk:
        tx_id, ordered = kiosk.paid(service.pki.cards["toride-000"])
        kiosk.download_all(tx_id)
        service.clock.advance(service.settings.transaction_ttl_seconds + 1)
        assert service.expire_due() == 1
        assert _statuses(service, tx_id) == ["issued"]
        late = kiosk.cancel(tx_id)  # printing had failed and the kiosk gave the money back
        assert late.status_code == 200, late.text
        assert late.json()["refunded_yen"] == ordered["fee_total_yen"]
    tx = _transaction(service, tx_id)
    assert (tx.state, tx.end_reason) == ("cancelled", "print_failed_refunded")
    assert tx.refunded_yen == tx.paid_yen == ordered["fee_total_yen"]
    assert _statuses(service, tx_id) == ["withdrawn"]


def test_cancel_after_release_records_a_failed_print_and_the_refund(service: Service) -> None:
    with service.kiosk() as kiosk:
        tx_id, ordered = kiosk.paid(service.pki.cards["toride-000"])
        kiosk.download_all(tx_id)
        assert kiosk.cancel(tx_id).json()["state"] == "cancelled"
        assert error_code(kiosk.printed(tx_id)) == "transaction_ended"
    tx = _transaction(service, tx_id)
    assert (tx.end_reason, tx.refunded_yen) == ("print_failed_refunded", ordered["fee_total_yen"])
    assert _statuses(service, tx_id) == ["withdrawn"]


def test_a_paid_transaction_that_expires_before_release_records_the_refund(service: Service) -> None:
    with service.kiosk() as kiosk:
        paid_only, ordered = kiosk.paid(service.pki.cards["toride-000"])
    with service.kiosk("K2") as kiosk:
        listed_only, _ = kiosk.paid(service.pki.cards["toride-010"])
        kiosk.documents(listed_only)  # released, but nothing downloaded: nothing can be on paper
    service.clock.advance(service.settings.transaction_ttl_seconds + 1)
    assert service.expire_due() == 2
    for tx_id in (paid_only, listed_only):
        tx = _transaction(service, tx_id)
        assert (tx.state, tx.refunded_yen) == ("expired", ordered["fee_total_yen"])
        assert _statuses(service, tx_id) == ["withdrawn"]


def test_an_unpaid_transaction_that_ends_records_no_refund(service: Service) -> None:
    with service.kiosk() as kiosk:
        tx_id, _ = kiosk.authenticated(service.pki.cards["toride-000"])
        assert kiosk.order(tx_id).status_code == 200
        kiosk.cancel(tx_id)
    tx = _transaction(service, tx_id)
    assert (tx.state, tx.paid_yen, tx.refunded_yen) == ("cancelled", None, None)


def test_the_operator_sees_what_to_settle_and_where_every_paid_yen_went(service: Service, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from certserver.cli import main

    with service.kiosk() as kiosk:
        printed, ordered = kiosk.paid(service.pki.cards["toride-000"])
        kiosk.download_all(printed)
        kiosk.printed(printed)
    with service.kiosk("K2") as kiosk:
        lost, _ = kiosk.paid(service.pki.cards["toride-010"])
        kiosk.download_all(lost)
    with service.kiosk("K3") as kiosk:
        refunded, _ = kiosk.paid(service.pki.cards["toride-020"])
    service.clock.advance(service.settings.transaction_ttl_seconds + 1)
    assert service.expire_due() == 2
    fee = ordered["fee_total_yen"]

    monkeypatch.setenv("CERTSERVER_DATABASE_URL", service.settings.database_url or "")
    assert main(["transactions", "unconfirmed", "--data-dir", str(service.pki.data_dir)]) == 0
    listing = capsys.readouterr().out
    assert f"{lost} kiosk=K2" in listing and "(timeout)" in listing and "1 released transaction(s)" in listing
    assert printed not in listing and refunded not in listing
    (number,) = _numbers(service, lost)
    assert f"issued={number}" in listing

    assert main(["transactions", "summary", "--data-dir", str(service.pki.data_dir)]) == 0
    summary = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in summary.splitlines()[1:-1]}
    assert rows["printed"] == ["1", str(fee), "0"]
    assert rows["released_unconfirmed"] == ["1", str(fee), "0"]
    assert rows["expired"] == ["1", str(fee), str(fee)]
    assert f"fees kept (printed): {fee} yen; to settle (released_unconfirmed): {fee} yen" in summary
