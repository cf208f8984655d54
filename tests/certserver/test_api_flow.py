"""The kiosk API end to end on a real server: the whole happy path and what each step
refuses out of order."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re

import api_support
import httpx
from api_support import BY_ID, JUMINHYO_FEE, Service, error_code, pdf_text

pki = api_support.pki  # fixtures
service = api_support.service_over_each_link  # in-process, and behind the LGWAN link


def test_a_resident_gets_their_own_juminhyo_through_every_step(service: Service) -> None:
    card = service.pki.cards["toride-000"]
    with service.kiosk("K1") as kiosk:
        started = kiosk.start()
        assert started.status_code == 201
        body = started.json()
        assert body["state"] == "started"
        assert len(base64.b64decode(body["challenge"])) == 32
        tx_id = body["transaction_id"]

        answer = kiosk.authenticate(tx_id, card, body["challenge"])
        assert answer.status_code == 200, answer.text
        menu = answer.json()["menu"]
        assert answer.json()["state"] == "authenticated"
        home = menu["municipalities"][0]
        assert home["code"] == "08217" and home["role"] == "jushochi"
        juminhyo = next(o for o in home["offers"] if o["kind"] == "juminhyo")
        assert juminhyo["fee_yen"] == JUMINHYO_FEE
        names = {p["name"] for p in juminhyo["persons"]}
        assert BY_ID["toride-000"].name in names and BY_ID["toride-010"].name not in names

        ordered = kiosk.order(tx_id, copies=2)
        assert ordered.status_code == 200, ordered.text
        assert ordered.json()["fee_total_yen"] == 2 * JUMINHYO_FEE
        assert ordered.json()["documents"] == 2
        assert ordered.json()["order"]["persons"] == [BY_ID["toride-000"].name]

        assert error_code(kiosk.documents(tx_id)) == "invalid_state"  # nothing before payment
        assert kiosk.pay(tx_id, 2 * JUMINHYO_FEE).json()["state"] == "paid"

        listed = kiosk.documents(tx_id).json()["documents"]
        assert [d["copy_index"] for d in listed] == [0, 1]
        assert len({d["certificate_number"] for d in listed}) == 2
        for doc in listed:
            pdf = kiosk.document(tx_id, doc["document_id"])
            assert pdf.status_code == 200
            assert pdf.headers["content-type"] == "application/pdf"
            assert hashlib.sha256(pdf.content).hexdigest() == doc["sha256"] == pdf.headers["x-content-sha256"]
            text = pdf_text(pdf.content)
            assert BY_ID["toride-000"].name.replace("\u3000", "") in text

        done = kiosk.printed(tx_id)
        assert done.json()["state"] == "printed"
        # Printed documents are erased: nothing can be fetched again.
        assert error_code(kiosk.document(tx_id, listed[0]["document_id"])) == "transaction_ended"


def test_a_printed_certificate_verifies_and_one_of_a_cancelled_transaction_is_withdrawn(service: Service) -> None:
    with service.kiosk("K1") as kiosk:
        printed_tx, _ = kiosk.paid(service.pki.cards["toride-000"])
        doc = kiosk.documents(printed_tx).json()["documents"][0]
        printed_pdf = kiosk.document(printed_tx, doc["document_id"]).content
        before = httpx.post(
            f"{service.url}/verify/pdf", content=printed_pdf, headers={"Content-Type": "application/pdf"}, timeout=30
        ).json()
        assert before["status"] == "unknown_issuer"  # not issued until the kiosk says printed
        kiosk.printed(printed_tx)

        cancelled_tx, _ = kiosk.paid(service.pki.cards["toride-010"])
        doc = kiosk.documents(cancelled_tx).json()["documents"][0]
        cancelled_pdf = kiosk.document(cancelled_tx, doc["document_id"]).content
        kiosk.cancel(cancelled_tx)

    def verify(pdf: bytes) -> dict:
        return httpx.post(
            f"{service.url}/verify/pdf", content=pdf, headers={"Content-Type": "application/pdf"}, timeout=30
        ).json()

    assert verify(printed_pdf)["status"] == "valid"
    assert verify(cancelled_pdf)["status"] == "revoked_or_withdrawn"


def test_the_pdf_signature_is_dated_by_the_services_clock_not_the_hosts(service: Service) -> None:
    """The service lives in its own time (a pretended day in demos and tests): the
    signature's time matches the date printed on the certificate, not the host's clock."""
    with service.kiosk("K1") as kiosk:
        tx_id, _ordered = kiosk.paid(service.pki.cards["toride-000"])
        ordered_at = service.clock()
        (pdf,) = kiosk.download_all(tx_id)
    signed = re.search(rb"/M \(D:(\d{14})\+00'00'\)", pdf)
    assert signed is not None
    assert signed.group(1).decode() == ordered_at.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S")
    assert abs(ordered_at - dt.datetime.now(dt.UTC)) > dt.timedelta(hours=1)  # the clocks differ: the test can tell
