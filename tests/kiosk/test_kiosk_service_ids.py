"""Ids the kiosk receives from the service are checked against the API's own pattern before
they go into a URL or a file name: a service (or anything posing as one) that answers a
crafted transaction id cannot make the kiosk write outside its printer folder.

The service here is a tiny HTTP server on 127.0.0.1 that answers every kiosk endpoint with
well-formed JSON around one crafted id: the part of the world the kiosk does not own.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kiosk.card import VirtualCardReader
from kiosk.client import ClientSettings, ServiceClient, ServiceError
from kiosk.config import KioskSettings, build_devices
from kiosk.driver import Driver, VisitScript
from kiosk.flow import KioskFlow
from kiosk.models import Document, DocumentRef, Order
from kiosk.printer import DocumentMismatchError, Printer
from kioskapi.models import CertificateKind, MunicipalityRole
from konbini_testkit.cards import PIN, make_card

GOOD_ID = "Wq3xTransactionId0123456789abcdefghijklmno"
PDF = b"%PDF-1.4\n1 0 obj<</Type/Page>>endobj\n%%EOF\n"
MENU = {
    "municipalities": [
        {
            "code": "08217",
            "name": "取手市",
            "role": "jushochi",
            "open": True,
            "closed_reason": None,
            "offers": [
                {
                    "kind": "juminhyo",
                    "fee_yen": 200,
                    "max_copies": 5,
                    "available": True,
                    "persons": [
                        {"person_id": "p-0001", "name": "取手　太郎", "relationship": "本人", "is_requester": True}
                    ],
                    "options": [],
                }
            ],
        }
    ]
}


EXPIRES = "2030-01-07T01:10:00Z"


def _status(transaction_id: str, state: str) -> dict[str, object]:
    """A TransactionStatus (kioskapi.models) as the service writes it: every field."""
    empty = {"fee_total_yen": None, "paid_yen": None, "refunded_yen": None, "order": None}
    return {"transaction_id": transaction_id, "state": state, "expires_at": EXPIRES, **empty}


class StubService:
    """Answers the kiosk API with `transaction_id` and `document_id` as given, in the
    contract's shapes; the answer of the step `without_expiry` lacks its `expires_at`."""

    def __init__(
        self, transaction_id: str, document_id: str = "DocumentId0123456789", *, without_expiry: str = ""
    ) -> None:
        self.transaction_id, self.document_id = transaction_id, document_id
        self.without_expiry = without_expiry
        self.paths: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._answer()

            def _answer(self) -> None:
                stub.paths.append(self.path)
                status, body, headers = stub.answer(self.command, self.path)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, method: str, path: str) -> tuple[int, bytes, dict[str, str]]:
        tx = self.transaction_id
        if method == "GET" and re.search(r"/documents/[^/]+$", path):
            return 200, PDF, {"Content-Type": "application/pdf", "X-Transaction-Id": tx}
        if method == "GET" and path.endswith("/documents"):
            body: object = {
                "transaction_id": tx,
                "documents": [{"document_id": self.document_id, "sha256": hashlib.sha256(PDF).hexdigest()}],
            }
        elif path.endswith("/api/v1/transactions"):
            challenge = base64.b64encode(b"\x01" * 32).decode()
            body = {**_status(tx, "started"), "challenge": challenge, "challenge_expires_at": EXPIRES}
            body = {k: body[k] for k in ("transaction_id", "state", "challenge", "challenge_expires_at", "expires_at")}
        elif path.endswith("/authenticate"):
            body = {**_status(tx, "authenticated"), "menu": MENU}
        elif path.endswith("/order"):
            order = {"copies": 1, "certificate_numbers": ["08217-1"]}
            body = {**_status(tx, "ordered"), "fee_total_yen": 200, "documents": 1, "order": order}
        else:  # payment, printed, cancel
            body = _status(tx, {"payment": "paid", "printed": "printed", "cancel": "cancelled"}[path.rsplit("/", 1)[1]])
        if isinstance(body, dict) and path.rsplit("/", 1)[1] == self.without_expiry:
            body.pop("expires_at")
        return 200, json.dumps(body).encode(), {"Content-Type": "application/json"}

    def __enter__(self) -> StubService:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


CRAFTED_TRANSACTION_IDS = ["../../outside", "../outside-tx", "a/b/c/d/e/f/g", "x" * 65, "short", "ok id with space"]


@pytest.mark.parametrize("crafted", CRAFTED_TRANSACTION_IDS)
def test_a_crafted_transaction_id_prints_nothing_anywhere(tmp_path: Path, crafted: str) -> None:
    """A whole visit against a service answering a crafted transaction id: the visit ends
    in an error, no file is written (inside or outside the printer folder), and no URL
    carrying the crafted id was requested."""
    out = tmp_path / "site" / "printed"
    card = make_card(tmp_path / "card.json")
    with StubService(crafted) as stub:
        settings = KioskSettings(server_url=stub.url, kiosk_id="K1", kiosk_secret="s", printer_dir=out)
        devices = build_devices(settings, reader=VirtualCardReader(str(card)))
        try:
            result = Driver(KioskFlow(), devices.runner).visit(VisitScript(pin=PIN, pay_yen=200))
        finally:
            devices.close()
    assert result.status == "error" and result.documents == []
    assert sorted(p.name for p in tmp_path.rglob("*.pdf")) == []
    assert all(crafted not in path for path in stub.paths)


def test_the_stub_serves_a_whole_visit_with_a_well_formed_id(tmp_path: Path) -> None:
    """The same stub with an id of the API's pattern prints into the printer folder only,
    so the test above fails for the id and not for the stub."""
    out = tmp_path / "printed"
    card = make_card(tmp_path / "card.json")
    with StubService(GOOD_ID) as stub:
        settings = KioskSettings(server_url=stub.url, kiosk_id="K1", kiosk_secret="s", printer_dir=out)
        devices = build_devices(settings, reader=VirtualCardReader(str(card)))
        try:
            result = Driver(KioskFlow(), devices.runner).visit(VisitScript(pin=PIN, pay_yen=200))
        finally:
            devices.close()
    assert result.status == "issued", result
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.pdf")) == [
        Path("printed") / f"{GOOD_ID}-1.pdf",
        Path("printed") / f"{GOOD_ID}-receipt.pdf",
    ]


@pytest.mark.parametrize("crafted", ["../../../../tmp/x", "doc/../../y", "?q=1", "%2e%2e"])
def test_a_crafted_document_id_is_refused_before_any_url_is_built(crafted: str) -> None:
    with (
        StubService(GOOD_ID, document_id=crafted) as stub,
        ServiceClient(ClientSettings(stub.url, "K1", "s")) as client,
    ):
        with pytest.raises(ServiceError) as refused:
            client.list_documents(GOOD_ID)
        assert refused.value.code == "bad_response"
        with pytest.raises(ServiceError):
            client.fetch_document(GOOD_ID, DocumentRef(crafted, "0" * 64))
    assert all(crafted not in path for path in stub.paths)


@pytest.mark.parametrize("crafted", ["../outside", "/tmp/abs", "a/b", "", "x" * 65, "dot.dot"])
def test_the_printer_itself_writes_nothing_for_a_transaction_id_that_is_no_plain_file_name(
    tmp_path: Path, crafted: str
) -> None:
    """The printer makes the file name, so it checks the id too (the client is the first check)."""
    pdf_ref = DocumentRef("DocumentId0123456789", hashlib.sha256(PDF).hexdigest())
    printer = Printer(tmp_path / "tray" / "printed", sheets=10)
    with pytest.raises(DocumentMismatchError):
        printer.print_documents(crafted, (pdf_ref,), (Document(pdf_ref, crafted, PDF),))
    assert list(tmp_path.rglob("*")) == [] and printer.sheets == 10


STEPS = {  # the last part of the step's path: the client's call of that step
    "transactions": lambda client: client.start_transaction(),
    "authenticate": lambda client: client.authenticate(GOOD_ID, b"certificate", b"signature"),
    "order": lambda client: client.order(
        GOOD_ID, Order(municipality_code="08217", role=MunicipalityRole.JUSHOCHI, kind=CertificateKind.JUMINHYO)
    ),
    "payment": lambda client: client.pay(GOOD_ID, 200),
    "printed": lambda client: client.printed(GOOD_ID),
    "cancel": lambda client: client.cancel(GOOD_ID),
}


@pytest.mark.parametrize("step", sorted(STEPS))
def test_the_kiosk_reads_every_answer_whole_with_the_contract(step: str) -> None:
    """Each answer is parsed whole with its kioskapi model, not only for the fields the
    kiosk acts on (as it was): one without its `expires_at` is a bad response, and the
    whole one is read."""
    with StubService(GOOD_ID) as stub, ServiceClient(ClientSettings(stub.url, "K1", "s")) as client:
        STEPS[step](client)
    with (
        StubService(GOOD_ID, without_expiry=step) as stub,
        ServiceClient(ClientSettings(stub.url, "K1", "s")) as client,
        pytest.raises(ServiceError) as refused,
    ):
        STEPS[step](client)
    assert refused.value.code == "bad_response"
