"""The link between the centre and a municipality's certificate server (docs/lgwan.md).

Mutual TLS: a municipality's server answers only the centre's certificate, and a
municipality's certificate opens nothing at the centre. Faults on the link (a fault-injecting
proxy between the centre and the municipality's server, on plain HTTP so that the proxy can
frame requests; the TLS is the same handshake tested above): each ends the transaction whole,
with nothing charged, and an order is numbered once however often its call is delivered.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import api_support
import httpx
import pytest
from api_support import MUNICIPALITY, LiveServer, MovableClock, Pki, Service, error_code
from sqlalchemy import select

from certserver.app import create_app, create_municipal_app
from certserver.db.models.lgwan import LgwanOrder
from certserver.db.models.transactions import (
    AuditEntry,
    CertificateCounter,
    IssuedDocument,
    KioskTransaction,
    OutcomeReport,
)
from certserver.db.session import make_engine, make_session_factory, transaction
from certserver.lgwan.tls import centre_client_files, client_ssl_context, make_lgwan_pki, server_files
from certserver.municipal.service import MunicipalService
from konbini_testkit.faultproxy import Fault, FaultProxy

pki = api_support.pki  # fixtures
ORDER = "POST /lgwan/v1/orders"
MENU = "POST /lgwan/v1/menu"


# -- mutual TLS ------------------------------------------------------------------------------


@pytest.fixture
def tls_municipality(db_url: str, pki: Pki, tmp_path: Path) -> Iterator[tuple[LiveServer, Path]]:
    engine = make_engine(db_url)
    with transaction(make_session_factory(engine)) as session:
        api_support.populate(session, pki)
    engine.dispose()
    lgwan_dir = tmp_path / "lgwan"
    with api_support.municipality_server(api_support.make_settings(pki, db_url), [MUNICIPALITY], lgwan_dir) as server:
        yield server, lgwan_dir


def _tls_client(cert: tuple[str, str] | None, trust: Path) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(trust))
    if cert is not None:
        context.load_cert_chain(*cert)
    return httpx.Client(verify=context, timeout=5)


def test_a_municipality_server_answers_the_centre_and_refuses_everyone_else(
    tls_municipality: tuple[LiveServer, Path],
) -> None:
    server, lgwan_dir = tls_municipality
    with httpx.Client(verify=client_ssl_context(centre_client_files(lgwan_dir)), timeout=5) as centre:
        health = centre.get(f"{server.url}/lgwan/v1/health")
        assert health.status_code == 200 and health.json() == {"status": "ok", "municipalities": [MUNICIPALITY]}
    trust = lgwan_dir / "municipality-ca.pem"
    own = server_files(lgwan_dir, "test-municipalities")
    for cert in (None, (str(own.cert), str(own.key))):  # no certificate; a municipality's own
        with _tls_client(cert, trust) as stranger, pytest.raises(httpx.TransportError):
            stranger.get(f"{server.url}/lgwan/v1/health")


def test_a_municipality_certificate_opens_nothing_at_the_centre(db_url: str, pki: Pki, tmp_path: Path) -> None:
    """The kiosk API wants a kiosk's credential; a municipality's certificate is not one."""
    lgwan_dir = tmp_path / "lgwan"
    make_lgwan_pki(lgwan_dir, servers=["test-municipalities"])
    own = server_files(lgwan_dir, "test-municipalities")
    engine = make_engine(db_url)
    with transaction(make_session_factory(engine)) as session:
        api_support.populate(session, pki)
    engine.dispose()
    app = create_app(api_support.make_settings(pki, db_url), clock=MovableClock())
    with_certificate = ssl.create_default_context()
    with_certificate.load_cert_chain(own.cert, own.key)
    with LiveServer(app) as centre, httpx.Client(verify=with_certificate, timeout=5) as caller:
        answer = caller.post(f"{centre.url}/api/v1/transactions")
    assert answer.status_code == 401 and error_code(answer) == "unauthorized_kiosk"


# -- faults on the link -------------------------------------------------------------------------


@dataclass
class Linked:
    service: Service
    proxy: FaultProxy
    municipal: MunicipalService


@pytest.fixture
def municipal_service(linked: Linked) -> MunicipalService:
    return linked.municipal


@pytest.fixture
def linked(db_url: str, pki: Pki, tmp_path: Path) -> Iterator[Linked]:
    """The centre reaching the municipality's server through a fault proxy; the centre
    waits 2 s for an answer."""
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        api_support.populate(session, pki)
    lgwan_dir = tmp_path / "lgwan"
    make_lgwan_pki(lgwan_dir, servers=[])
    clock = MovableClock()
    try:
        with contextlib.ExitStack() as stack:
            municipal_app = create_municipal_app(api_support.make_settings(pki, db_url), [MUNICIPALITY])
            municipal = stack.enter_context(LiveServer(municipal_app))
            proxy = stack.enter_context(FaultProxy(municipal.port))
            settings = api_support.make_settings(
                pki,
                db_url,
                lgwan_endpoints={MUNICIPALITY: proxy.url},
                lgwan_tls_dir=lgwan_dir,
                lgwan_timeout_seconds=2.0,
            )
            app = create_app(settings, clock=clock)
            centre = stack.enter_context(LiveServer(app))
            yield Linked(Service(centre.url, settings, factory, clock, pki, app), proxy, municipal_app.state.municipal)
    finally:
        engine.dispose()


def _transaction(service: Service, tx_id: str) -> KioskTransaction:
    with transaction(service.factory) as session:
        return session.get(KioskTransaction, tx_id)


def _documents(service: Service, tx_id: str) -> list[IssuedDocument]:
    with transaction(service.factory) as session:
        return list(session.scalars(select(IssuedDocument).where(IssuedDocument.transaction_id == tx_id)))


def _numbered(service: Service) -> int:
    with transaction(service.factory) as session:
        counter = session.get(CertificateCounter, MUNICIPALITY)
        return 0 if counter is None else counter.last_number


def _assert_failed_uncharged(service: Service, tx_id: str) -> None:
    tx = _transaction(service, tx_id)
    assert tx.state == "failed" and tx.end_reason.endswith("municipality_unavailable")
    assert tx.paid_yen is None and tx.order_summary is None
    assert _documents(service, tx_id) == []


def test_a_municipality_that_is_down_fails_the_authentication_whole(linked: Linked) -> None:
    linked.proxy.add(Fault("refuse", MENU, times=None))
    card = linked.service.pki.cards["toride-000"]
    with linked.service.kiosk() as kiosk:
        started = kiosk.start().json()
        answer = kiosk.authenticate(started["transaction_id"], card, started["challenge"])
    assert answer.status_code == 503 and error_code(answer) == "municipality_unavailable"
    assert len(linked.proxy.hits("refuse")) == 2  # the first try and the one retry
    _assert_failed_uncharged(linked.service, started["transaction_id"])


def test_an_order_answered_too_late_fails_the_transaction_whole_and_charges_nothing(linked: Linked) -> None:
    with linked.service.kiosk() as kiosk:
        tx_id, _ = kiosk.authenticated(linked.service.pki.cards["toride-000"])
        linked.proxy.add(Fault("slow_answer", ORDER, seconds=3.0))
        answer = kiosk.order(tx_id)
        assert answer.status_code == 503 and error_code(answer) == "municipality_unavailable"
        assert error_code(kiosk.pay(tx_id, 200)) == "transaction_ended"
        _assert_failed_uncharged(linked.service, tx_id)
        # The link is back: the next person is served.
        tx_id, _ = kiosk.paid(linked.service.pki.cards["toride-010"])
    assert _transaction(linked.service, tx_id).state == "paid"


def test_an_order_delivered_twice_is_numbered_once(linked: Linked) -> None:
    before = _numbered(linked.service)
    linked.proxy.add(Fault("duplicate", ORDER))
    with linked.service.kiosk() as kiosk:
        _, ordered = kiosk.paid(linked.service.pki.cards["toride-000"], copies=2)
    assert linked.proxy.hits("duplicate") == [ORDER]
    assert _numbered(linked.service) == before + 2
    with transaction(linked.service.factory) as session:
        orders = list(session.scalars(select(LgwanOrder)))
    assert len(orders) == 1 and orders[0].certificate_numbers.split() == ordered["order"]["certificate_numbers"]


def test_an_order_answer_cut_off_mid_way_is_fetched_again_not_made_again(linked: Linked) -> None:
    before = _numbered(linked.service)
    linked.proxy.add(Fault("reset", ORDER, after_bytes=200))
    with linked.service.kiosk() as kiosk:
        tx_id, _ = kiosk.paid(linked.service.pki.cards["toride-000"])
        pdfs = kiosk.download_all(tx_id)
    assert linked.proxy.hits("reset") == [ORDER]
    assert _numbered(linked.service) == before + 1 and len(pdfs) == 1 and pdfs[0].startswith(b"%PDF")


# -- outcomes: the municipality learns what printed -----------------------------------------------

OUTCOME = "POST /lgwan/v1/outcomes"


def _orders(service: Service) -> dict[str, LgwanOrder]:
    with transaction(service.factory) as session:
        return {o.request_id: o for o in session.scalars(select(LgwanOrder))}


def _settled(service: Service, count: int) -> dict[str, LgwanOrder]:
    """The municipality's records once `count` of them are settled (delivery runs in the
    background after each ending)."""
    deadline = time.monotonic() + 10
    while True:
        orders = _orders(service)
        if sum(o.outcome is not None for o in orders.values()) >= count or time.monotonic() > deadline:
            return orders
        time.sleep(0.05)


def _reconciled(service: Service) -> None:
    """Every number the centre issued the municipality records as issued, and no other."""
    with transaction(service.factory) as session:
        documents = list(session.scalars(select(IssuedDocument)))
    centre_issued = sorted(d.certificate_number for d in documents if d.status == "issued")
    municipal = _orders(service).values()
    assert sorted(n for o in municipal for n in o.issued_numbers.split()) == centre_issued


def test_the_municipality_learns_what_printed_and_what_not_and_keeps_no_pdf_of_it(linked: Linked) -> None:
    with linked.service.kiosk() as kiosk:
        printed_tx, _ = kiosk.paid(linked.service.pki.cards["toride-000"], copies=2)
        kiosk.download_all(printed_tx)
        assert kiosk.printed(printed_tx).status_code == 200
        cancelled_tx, _ = kiosk.paid(linked.service.pki.cards["toride-010"])
        assert kiosk.cancel(cancelled_tx).status_code == 200
    orders = _settled(linked.service, 2)
    outcomes = sorted(o.outcome or "" for o in orders.values())
    assert outcomes == ["issued", "withdrawn"]
    assert all(o.answer is None and o.settled_at is not None for o in orders.values())
    _reconciled(linked.service)
    with transaction(linked.service.factory) as session:
        recorded = [e.outcome for e in session.scalars(select(AuditEntry).where(AuditEntry.action == "lgwan_outcome"))]
    assert sorted(recorded) == ["issued", "withdrawn"]


def test_an_outcome_the_municipality_does_not_take_is_sent_again_later(linked: Linked) -> None:
    linked.proxy.add(Fault("refuse", OUTCOME, times=2))  # this delivery and its one retry
    with linked.service.kiosk() as kiosk:
        first, _ = kiosk.paid(linked.service.pki.cards["toride-000"])
        kiosk.download_all(first)
        done = kiosk.printed(first)
        assert done.status_code == 200, done.text
        deadline = time.monotonic() + 10
        while len(linked.proxy.hits("refuse")) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [o.outcome for o in _orders(linked.service).values()] == [None]
        with transaction(linked.service.factory) as session:
            (queued,) = session.scalars(select(OutcomeReport))
        assert queued.delivered_at is None and queued.attempts == 1
        # The next ending's delivery round takes the queued report too.
        second, _ = kiosk.paid(linked.service.pki.cards["toride-010"])
        kiosk.cancel(second)
    orders = _settled(linked.service, 2)
    assert sorted(o.outcome or "" for o in orders.values()) == ["issued", "withdrawn"]
    _reconciled(linked.service)


def test_a_stored_answer_whose_outcome_never_comes_is_erased_in_time(
    linked: Linked, municipal_service: MunicipalService
) -> None:
    """The municipality keeps an order's PDFs for a repeated delivery only until its outcome
    comes, or, if it never does (the centre cannot reach it), a while after newer orders."""
    linked.proxy.add(Fault("refuse", OUTCOME, times=None))
    with linked.service.kiosk() as kiosk:
        tx_id, _ = kiosk.paid(linked.service.pki.cards["toride-000"])
        kiosk.cancel(tx_id)
        assert municipal_service.erase_unsettled_answers() == 0  # still young
        linked.service.clock.advance(3 * 3600)
        kiosk.paid(linked.service.pki.cards["toride-010"])
    assert municipal_service.erase_unsettled_answers() == 1
    orders = sorted(_orders(linked.service).values(), key=lambda o: o.created_at)
    assert (orders[0].answer, orders[0].outcome) == (None, "unreported")
    assert orders[1].answer is not None  # the newer one is kept
