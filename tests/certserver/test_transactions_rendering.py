"""Rendering runs off the event loop in a bounded pool: while certificates render, the
server keeps answering, and no more than `render_pool_size` render at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import api_support
import pytest
from api_support import (
    KioskClient,
    LiveServer,
    MovableClock,
    Pki,
    error_code,
    make_settings,
    populate,
    populated_with_kiosks,
)
from fastapi import FastAPI
from sqlalchemy import select

from certserver.app import create_app
from certserver.db.models.transactions import IssuedDocument, KioskTransaction
from certserver.db.session import make_engine, make_session_factory, transaction
from certserver.documents.content import CertificateContent
from certserver.documents.service import DocumentService, RenderedDocument
from certserver.documents.signing import SignerStore
from certserver.services.kiosks import KioskCredential, register_kiosk

pki = api_support.pki  # fixture
RENDER_SECONDS = 0.6


class ObservedRenderer:
    """The real document service, made slower and watched: how many render at once."""

    def __init__(self, real: DocumentService) -> None:
        self.real = real
        self.running = 0
        self.most_at_once = 0
        self.lock = threading.Lock()

    def render(self, content: CertificateContent) -> RenderedDocument:
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            time.sleep(RENDER_SECONDS)
            return self.real.render(content)
        finally:
            with self.lock:
                self.running -= 1


@pytest.fixture
def slow_service(db_url: str, pki: Pki) -> Iterator[tuple[str, ObservedRenderer, list[KioskCredential]]]:
    clock = MovableClock()
    credentials = populated_with_kiosks(db_url, pki, ["K0", "K1", "K2"], clock())
    renderer = ObservedRenderer(DocumentService(SignerStore.open(pki.data_dir / "ca")))
    app = create_app(make_settings(pki, db_url, render_pool_size=1), clock=clock, renderer=renderer)
    with LiveServer(app) as server:
        yield server.url, renderer, credentials


def test_orders_render_one_at_a_time_while_the_server_keeps_answering(
    slow_service: tuple[str, ObservedRenderer, list[KioskCredential]], pki: Pki
) -> None:
    url, renderer, credentials = slow_service
    answers: list[int] = []

    def order(credential: KioskCredential, resident: str) -> None:
        with KioskClient(url, credential) as kiosk:
            tx_id, _ = kiosk.authenticated(pki.cards[resident])
            answers.append(kiosk.order(tx_id).status_code)

    threads = [
        threading.Thread(target=order, args=(c, r))
        for c, r in zip(credentials, ("toride-000", "toride-010", "toride-020"), strict=True)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(RENDER_SECONDS / 2)
    with KioskClient(url, None) as anyone:
        t0 = time.monotonic()
        assert anyone.http.get("/api/v1/health").status_code == 200
        assert time.monotonic() - t0 < RENDER_SECONDS  # not queued behind the renders
    for thread in threads:
        thread.join(timeout=60)
    assert answers == [200, 200, 200]
    assert renderer.most_at_once == 1  # render_pool_size=1
    assert time.monotonic() - started >= 3 * RENDER_SECONDS


class TimingOutRenderer:
    """The real document service, during whose render the transaction times out and the
    service's sweep ends it (as the sweeper task would, from another database session)."""

    def __init__(self, real: DocumentService, clock: MovableClock) -> None:
        self.real = real
        self.clock = clock
        self.app: FastAPI | None = None
        self.expired_during_render = 0

    def render(self, content: CertificateContent) -> RenderedDocument:
        assert self.app is not None
        context = self.app.state.service
        self.clock.advance(context.settings.transaction_ttl_seconds + 1)
        self.expired_during_render += context.transactions.expire_due(context.session_factory, self.clock())
        return self.real.render(content)


def test_a_transaction_that_times_out_while_its_certificates_render_keeps_no_document(db_url: str, pki: Pki) -> None:
    engine = make_engine(db_url)
    clock = MovableClock()
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        populate(session, pki)
        credential = register_kiosk(session, "K0", "store", clock())
    renderer = TimingOutRenderer(DocumentService(SignerStore.open(pki.data_dir / "ca")), clock)
    app = create_app(make_settings(pki, db_url), clock=clock, renderer=renderer)
    renderer.app = app
    try:
        with LiveServer(app) as server, KioskClient(server.url, credential) as kiosk:
            tx_id, _ = kiosk.authenticated(pki.cards["toride-000"])
            answer = kiosk.order(tx_id)
        assert renderer.expired_during_render == 1
        assert answer.status_code == 410 and error_code(answer) == "transaction_expired", answer.text
        with transaction(factory) as session:
            tx = session.get(KioskTransaction, tx_id)
            docs = list(session.scalars(select(IssuedDocument).where(IssuedDocument.transaction_id == tx_id)))
            assert tx is not None and tx.state == "expired" and tx.fee_total_yen is None
            # The municipality's copies arrived after the end: the centre kept none of them.
            assert docs == []
    finally:
        engine.dispose()


class HeldRenderer:
    """The real document service, holding each render until the test lets it go."""

    def __init__(self, real: DocumentService) -> None:
        self.real = real
        self.started = threading.Event()
        self.release = threading.Event()

    def render(self, content: CertificateContent) -> RenderedDocument:
        self.started.set()
        assert self.release.wait(timeout=60)
        return self.real.render(content)


def test_an_order_waiting_for_its_certificates_holds_no_database_turn(db_url: str, pki: Pki) -> None:
    clock = MovableClock()
    first, second = populated_with_kiosks(db_url, pki, ["K0", "K1"], clock())
    renderer = HeldRenderer(DocumentService(SignerStore.open(pki.data_dir / "ca")))
    app = create_app(make_settings(pki, db_url), clock=clock, renderer=renderer)
    if db_url.startswith("sqlite"):
        assert app.state.service.db_turns == 1  # one request at a time does database work
    answers: list[int] = []
    with LiveServer(app) as server, KioskClient(server.url, first) as one, KioskClient(server.url, second) as two:
        tx_id, _ = one.authenticated(pki.cards["toride-000"])
        ordering = threading.Thread(target=lambda: answers.append(one.order(tx_id).status_code))
        ordering.start()
        try:
            assert renderer.started.wait(timeout=30)
            # The other kiosk's whole visit up to its own order goes on meanwhile.
            other_tx, menu = two.authenticated(pki.cards["toride-010"])
            assert menu["state"] == "authenticated"
            assert two.status(other_tx).json()["state"] == "authenticated"
            # The first is still rendering at the municipality: the centre records the order
            # once its copies arrive.
            assert one.status(tx_id).json()["state"] == "authenticated"
            assert answers == []
        finally:
            renderer.release.set()
            ordering.join(timeout=60)
        assert answers == [200]
        listed = one.pay(tx_id, one.status(tx_id).json()["fee_total_yen"])
        assert listed.status_code == 200
        assert len(one.documents(tx_id).json()["documents"]) == 1
