"""No one ever gets another person's data, under load (service.md §7: Yokohama, Kawasaki).

20 kiosks run 220 transactions at once against one real uvicorn on 127.0.0.1, for residents
picked at random (the same person sometimes at two kiosks at once), with cancellations,
time-outs and abandoned transactions mixed in, and each kiosk also trying to fetch other
kiosks' documents. Every document a kiosk receives is then read back: its text names
exactly the persons its requester asked for (and may ask for), its bytes match the hash the
kiosk was given, and the content hash in its signed metadata matches the one recorded.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import random
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import api_support
import pytest
from api_support import (
    BY_ID,
    PEOPLE,
    KioskClient,
    LiveServer,
    MovableClock,
    Pki,
    error_code,
    pdf_text,
    populate,
)
from pypdf import PdfReader
from sqlalchemy import select

from certserver.app import create_app
from certserver.centre.transactions import OPEN_STATES
from certserver.db.models.registry import Municipality
from certserver.db.models.transactions import IssuedDocument, KioskTransaction
from certserver.db.session import make_engine, make_session_factory, transaction
from certserver.services.audit import verify_chain
from certserver.services.kiosks import register_kiosk

pki = api_support.pki  # fixture

KIOSKS = 20
PER_KIOSK = 11  # 220 transactions
TTL_SECONDS = 8


class RunningClock:
    """Real time, shifted into kiosk hours (a weekday 10:00 JST), so time-outs are real."""

    def __init__(self) -> None:
        self.offset = MovableClock()() - dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset


@dataclass
class Received:
    kiosk_id: str
    requester: str
    expected_names: frozenset[str]
    document_id: str
    listed_sha256: str
    pdf: bytes


@dataclass
class Ledger:
    received: list[Received] = field(default_factory=list)
    open_documents: list[tuple[str, str]] = field(default_factory=list)  # (tx, doc) of others
    outcomes: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, outcome: str) -> None:
        with self.lock:
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def fail(self, message: str) -> None:
        with self.lock:
            self.failures.append(message)


@dataclass
class World:
    url: str
    factory: object
    credentials: dict


@pytest.fixture(params=["in-process", "lgwan"])
def world(request: pytest.FixtureRequest, db_url: str, pki: Pki, tmp_path: Path) -> Iterator[World]:
    """The service under load with its municipalities' certificate servers in its own
    process, and again behind the LGWAN link (a server of their own, mutual TLS)."""
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    clock = RunningClock()
    with transaction(factory) as session:
        populate(session, pki)
        credentials = {f"K{i:02d}": register_kiosk(session, f"K{i:02d}", f"store {i}", clock()) for i in range(KIOSKS)}
        codes = list(session.scalars(select(Municipality.code)))
    ttls = {"transaction_ttl_seconds": TTL_SECONDS, "challenge_ttl_seconds": TTL_SECONDS}
    try:
        with contextlib.ExitStack() as stack:
            link: dict[str, Any] = {}
            if request.param == "lgwan":
                lgwan_dir = tmp_path / "lgwan"
                municipal = stack.enter_context(
                    api_support.municipality_server(api_support.make_settings(pki, db_url), codes, lgwan_dir)
                )
                link = {"lgwan_endpoints": dict.fromkeys(codes, municipal.url), "lgwan_tls_dir": lgwan_dir}
            app = create_app(api_support.make_settings(pki, db_url, **ttls, **link), clock=clock)
            server = stack.enter_context(LiveServer(app))
            yield World(server.url, factory, credentials)
    finally:
        engine.dispose()


def _household(resident_id: str) -> list[str]:
    household = BY_ID[resident_id].household_id
    return [p.resident_id for p in PEOPLE if p.household_id == household]


def _order_for(rng: random.Random, requester: str) -> tuple[dict, frozenset[str]]:
    members = _household(requester)
    if rng.random() < 0.3:
        return {"whole_household": True}, frozenset(BY_ID[m].name for m in members)
    chosen = sorted({requester, *rng.sample(members, rng.randint(0, len(members) - 1))})
    return {"person_ids": chosen}, frozenset(BY_ID[m].name for m in chosen)


def _kiosk_run(world: World, kiosk_id: str, seed: int, ledger: Ledger, cards: dict) -> None:
    rng = random.Random(seed)
    with KioskClient(world.url, world.credentials[kiosk_id], timeout=60) as kiosk:
        for _ in range(PER_KIOSK):
            requester = rng.choice(PEOPLE).resident_id
            plan = rng.choices(
                ["complete", "cancel_ordered", "cancel_paid", "timeout", "abandon"], weights=[70, 10, 8, 5, 7]
            )[0]
            try:
                _one_transaction(kiosk, kiosk_id, requester, plan, rng, ledger, cards)
            except AssertionError as exc:
                ledger.fail(f"{kiosk_id} {plan} {requester}: {exc}")


def _one_transaction(
    kiosk: KioskClient, kiosk_id: str, requester: str, plan: str, rng: random.Random, ledger: Ledger, cards: dict
) -> None:
    started = kiosk.start()
    assert started.status_code == 201, started.text
    tx_id = started.json()["transaction_id"]
    auth = kiosk.authenticate(tx_id, cards[requester], started.json()["challenge"])
    assert auth.status_code == 200, auth.text
    order, expected = _order_for(rng, requester)
    ordered = kiosk.order(tx_id, **order)
    if ordered.status_code == 410:  # rendering queued past the TTL: an honest time-out
        ledger.count("expired_under_load")
        return
    assert ordered.status_code == 200, ordered.text
    assert set(ordered.json()["order"]["persons"]) == expected
    if plan == "abandon":
        ledger.count(plan)
        return  # the next start ends it
    if plan == "cancel_ordered":
        assert kiosk.cancel(tx_id).status_code == 200
        assert error_code(kiosk.documents(tx_id)) == "transaction_ended"
        ledger.count(plan)
        return
    if plan == "timeout":
        time.sleep(TTL_SECONDS + 0.5)
        late = kiosk.pay(tx_id, ordered.json()["fee_total_yen"])
        assert error_code(late) == "transaction_expired", late.text
        ledger.count(plan)
        return
    paid = kiosk.pay(tx_id, ordered.json()["fee_total_yen"])
    if paid.status_code == 410:
        ledger.count("expired_under_load")
        return
    assert paid.status_code == 200, paid.text
    listed = kiosk.documents(tx_id).json()["documents"]
    _try_foreign_documents(kiosk, tx_id, rng, ledger)
    with ledger.lock:
        ledger.open_documents.extend((tx_id, d["document_id"]) for d in listed)
    if plan == "cancel_paid":
        assert kiosk.cancel(tx_id).status_code == 200
        for doc in listed:
            refused = kiosk.document(tx_id, doc["document_id"])
            assert refused.status_code == 409 and b"%PDF" not in refused.content
        ledger.count(plan)
        return
    for doc in listed:
        pdf = kiosk.document(tx_id, doc["document_id"])
        if pdf.status_code == 410:  # the machine was too busy for the short time-out: ended whole
            ledger.count("expired_under_load")
            return
        assert pdf.status_code == 200, pdf.text
        with ledger.lock:
            ledger.received.append(
                Received(kiosk_id, requester, expected, doc["document_id"], doc["sha256"], pdf.content)
            )
    done = kiosk.printed(tx_id)
    # A report that comes after the time-out still settles a released transaction.
    assert done.status_code == 200, done.text
    ledger.count(plan)


def _try_foreign_documents(kiosk: KioskClient, own_tx: str, rng: random.Random, ledger: Ledger) -> None:
    with ledger.lock:
        others = rng.sample(ledger.open_documents, min(2, len(ledger.open_documents)))
    for other_tx, other_doc in others:
        for answer in (kiosk.document(own_tx, other_doc), kiosk.document(other_tx, other_doc)):
            if answer.status_code == 200 or b"%PDF" in answer.content:
                ledger.fail(f"a kiosk received document {other_doc} of transaction {other_tx}")


def _content_hash_in_metadata(pdf: bytes) -> str:
    keywords = str(PdfReader(io.BytesIO(pdf)).metadata.get("/Keywords", ""))
    match = re.search(r"content-sha256:([0-9a-f]{64})", keywords)
    assert match, keywords
    return match.group(1)


@pytest.mark.slow
def test_no_person_ever_receives_another_persons_data_under_load(world: World, pki: Pki) -> None:
    ledger = Ledger()
    threads = [
        threading.Thread(target=_kiosk_run, args=(world, kiosk_id, 1000 + i, ledger, pki.cards))
        for i, kiosk_id in enumerate(world.credentials)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert not any(t.is_alive() for t in threads), "kiosk threads hung"
    assert not ledger.failures, ledger.failures[:5]
    assert sum(ledger.outcomes.values()) == KIOSKS * PER_KIOSK
    assert ledger.outcomes.get("complete", 0) >= 100, ledger.outcomes
    assert ledger.outcomes.get("timeout", 0) > 0 and ledger.outcomes.get("cancel_paid", 0) > 0, ledger.outcomes

    all_names = {p.name.replace("\u3000", ""): p.name for p in PEOPLE}
    with transaction(world.factory) as session:
        recorded = {d.id: d for d in session.scalars(select(IssuedDocument))}
        for item in ledger.received:
            text = pdf_text(item.pdf)
            named = {full for compact, full in all_names.items() if compact in text}
            assert named == item.expected_names, (item.requester, named, item.expected_names)
            assert BY_ID[item.requester].name in named
            assert hashlib.sha256(item.pdf).hexdigest() == item.listed_sha256
            row = recorded[item.document_id]
            assert row.pdf_sha256 == item.listed_sha256
            assert _content_hash_in_metadata(item.pdf) == row.content_sha256
            assert row.status == "issued" and row.pdf is None  # erased once printed
        # Nothing of a transaction that ended unprinted survives; at most each kiosk's last
        # (abandoned) transaction is still open, waiting for its time-out. The service's sweep
        # may end those while this reads, and SQLite reads outside a write transaction are not
        # one snapshot: each document is read together with its transaction's state, in one
        # statement.
        states = {tx_id: state for tx_id, state in session.execute(select(KioskTransaction.id, KioskTransaction.state))}  # noqa: C416 - a Result has keys(): dict() would read it as a mapping
        assert sum(state in OPEN_STATES for state in states.values()) <= KIOSKS
        documents_with_state = session.execute(
            select(IssuedDocument.status, IssuedDocument.pdf.is_(None), KioskTransaction.state).join(
                KioskTransaction, IssuedDocument.transaction_id == KioskTransaction.id
            )
        )
        for status, erased, state in documents_with_state:
            if state not in OPEN_STATES and state != "printed":
                assert erased and status == "withdrawn", (state, status)
        assert verify_chain(session).ok
    assert len(ledger.received) >= 100
