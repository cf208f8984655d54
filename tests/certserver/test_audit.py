"""The audit log: every step of a transaction is in it, with kiosk and certificate serial;
nothing personal or secret is; the hash chain detects a changed, deleted or truncated
entry; concurrent appends never fork it."""

from __future__ import annotations

import datetime as dt
import threading

import api_support
import pytest
from api_support import BY_ID, Service
from sqlalchemy import delete, select, update

from certserver.db.models.registry import Resident
from certserver.db.models.transactions import AuditEntry
from certserver.db.session import make_engine, make_session_factory, transaction
from certserver.services import audit

pki = api_support.pki  # fixtures
service = api_support.service


def _entries(service: Service, tx_id: str | None = None) -> list[AuditEntry]:
    with transaction(service.factory) as session:
        query = select(AuditEntry).order_by(AuditEntry.seq)
        if tx_id is not None:
            query = query.where(AuditEntry.transaction_id == tx_id)
        return list(session.scalars(query))


def _verify(service: Service) -> audit.ChainReport:
    with transaction(service.factory) as session:
        return audit.verify_chain(session)


def test_every_step_of_a_transaction_is_logged_with_kiosk_and_serial(service: Service) -> None:
    card = service.pki.cards["toride-000"]
    with service.kiosk("K1") as kiosk:
        tx_id, _ = kiosk.paid(card)
        doc_id = kiosk.documents(tx_id).json()["documents"][0]["document_id"]
        kiosk.document(tx_id, doc_id)
        kiosk.printed(tx_id)
    entries = _entries(service, tx_id)
    assert [e.action for e in entries] == [
        "start",
        "authenticate",
        "order",
        "render",
        "payment",
        "release",
        "fetch_document",
        "printed",
    ]
    assert all(e.outcome == "ok" and e.kiosk_id == "K1" for e in entries)
    assert all(e.card_serial == card.serial for e in entries[1:])
    assert _verify(service).ok


def test_refusals_are_logged_with_their_code(service: Service) -> None:
    card = service.pki.cards["toride-000"]
    with service.kiosk("K1") as kiosk:
        started = kiosk.start().json()
        kiosk.authenticate(started["transaction_id"], card, started["challenge"], signature=b"\x01" * 256)
    outcomes = [(e.action, e.outcome) for e in _entries(service, started["transaction_id"])]
    assert ("authenticate", "signature_invalid") in outcomes
    assert ("end", "failed") in outcomes


def test_a_dv_support_measure_reaches_the_kiosk_as_a_neutral_refusal_and_only_the_municipalitys_audit_keeps_it(
    service: Service,
) -> None:
    """The person at the kiosk may not be the protected one: the answer must not differ
    from any other 'not here' refusal, in code or in words. The centre's record of the
    transaction has the neutral code too; the municipality's own audit entry keeps why."""
    card = service.pki.cards["toride-000"]
    with transaction(service.factory) as session:
        session.execute(update(Resident).where(Resident.id == card.resident_id).values(status="dv_support"))
    with service.kiosk("K1") as kiosk:
        started = kiosk.start().json()
        answer = kiosk.authenticate(started["transaction_id"], card, started["challenge"])
    assert answer.status_code == 422
    assert answer.json() == {
        "error": {
            "code": "not_available_at_kiosk",
            "message_ja": "この証明書はコンビニでは交付できません。市区町村の窓口にお問い合わせください。",
            "message_en": "This certificate cannot be issued at a convenience store. Please ask at the municipal office.",
        }
    }
    for revealing in ("dv", "支援", "support"):
        assert revealing not in answer.text.lower()
    outcomes = [(e.action, e.outcome) for e in _entries(service, started["transaction_id"])]
    assert ("authenticate", "not_available_at_kiosk") in outcomes
    assert not any("dv" in outcome for _, outcome in outcomes)
    municipal = [(e.action, e.outcome, e.card_serial) for e in _entries(service) if e.transaction_id is None]
    assert ("lgwan_menu", "dv_support_measure", card.serial) in municipal


def test_the_log_holds_no_names_pins_or_document_content(service: Service) -> None:
    with service.kiosk("K1") as kiosk:
        tx_id, _ = kiosk.paid(service.pki.cards["toride-000"], person_ids=["toride-000", "toride-001"])
        kiosk.download_all(tx_id)
        kiosk.printed(tx_id)
    text = " ".join(f"{e.action} {e.outcome} {e.detail}" for e in _entries(service))
    for person in BY_ID.values():
        assert person.name not in text
        assert person.resident_id not in text
    for forbidden in ("pin", "password", "%PDF", "寺田", "address"):
        assert forbidden not in text.lower()


def test_forbidden_detail_keys_cannot_be_logged(service: Service) -> None:
    with transaction(service.factory) as session, pytest.raises(audit.AuditLogError):
        audit.record(session, at=service.clock(), action="x", outcome="ok", detail={"pin": "1234"})


def _some_history(service: Service) -> None:
    with service.kiosk("K1") as kiosk:
        for resident in ("toride-000", "toride-010"):
            tx_id, _ = kiosk.paid(service.pki.cards[resident])
            kiosk.cancel(tx_id)
    assert _verify(service).ok


def test_a_changed_entry_breaks_the_chain(service: Service) -> None:
    _some_history(service)
    victim = _entries(service)[3]
    with transaction(service.factory) as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == victim.seq).values(outcome="ok-ish"))
    report = _verify(service)
    assert not report.ok and report.broken_at_seq == victim.seq


def test_a_changed_entry_with_a_recomputed_hash_still_breaks_the_chain(service: Service) -> None:
    _some_history(service)
    victim = _entries(service)[2]
    forged = audit.entry_hash(
        seq=victim.seq,
        at=victim.at,
        action=victim.action,
        outcome="forged",
        kiosk_id=victim.kiosk_id,
        transaction_id=victim.transaction_id,
        card_serial=victim.card_serial,
        detail=victim.detail,
        prev_hash=victim.prev_hash,
    )
    with transaction(service.factory) as session:
        session.execute(
            update(AuditEntry).where(AuditEntry.seq == victim.seq).values(outcome="forged", entry_hash=forged)
        )
    report = _verify(service)
    assert not report.ok and report.broken_at_seq == victim.seq + 1


def test_a_deleted_entry_breaks_the_chain(service: Service) -> None:
    _some_history(service)
    victim = _entries(service)[4]
    with transaction(service.factory) as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq == victim.seq))
    report = _verify(service)
    assert not report.ok and report.broken_at_seq == victim.seq


def test_deleting_the_newest_entries_is_detected(service: Service) -> None:
    _some_history(service)
    last = _entries(service)[-1]
    with transaction(service.factory) as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq >= last.seq - 1))
    assert not _verify(service).ok


def test_concurrent_appends_from_many_connections_keep_one_chain(service: Service) -> None:
    # Separate engines, like separate worker processes; SQLite appends queue on the database
    # lock (the app's BEGIN IMMEDIATE), PostgreSQL's on the locked head row.
    from certserver.app import build_engine

    engines = [build_engine(service.settings) for _ in range(4)]
    errors: list[BaseException] = []

    def append(index: int) -> None:
        factory = make_session_factory(engines[index % len(engines)])
        try:
            for n in range(15):
                with transaction(factory) as session:
                    audit.record(
                        session,
                        at=dt.datetime.now(dt.UTC),
                        action="test",
                        outcome="ok",
                        detail={"writer": index, "n": n},
                    )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for engine in engines:
        engine.dispose()
    assert not errors
    report = _verify(service)
    assert report.ok and report.entries_checked == 8 * 15


def test_the_chain_is_verified_the_same_way_on_a_fresh_connection(service: Service) -> None:
    _some_history(service)
    engine = make_engine(service.settings.resolved_database_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            assert audit.verify_chain(session).ok
    finally:
        engine.dispose()


def test_verifying_while_the_service_appends_finds_the_chain_intact(service: Service) -> None:
    # `certserver audit verify` may run beside a live service. Its reads are not one snapshot
    # (SQLite outside a write transaction, PostgreSQL's read committed), so entries appended
    # while it reads must not look like a truncated log.
    from certserver.app import build_engine

    _some_history(service)
    writer_engine = build_engine(service.settings)
    writer = make_session_factory(writer_engine)
    reader_engine = make_engine(service.settings.resolved_database_url)
    stop = threading.Event()

    def append_until_stopped() -> None:
        while not stop.is_set():
            with transaction(writer) as session:
                audit.record(session, at=dt.datetime.now(dt.UTC), action="test", outcome="ok")

    appender = threading.Thread(target=append_until_stopped)
    appender.start()
    try:
        reports = []
        for _ in range(40):
            with transaction(make_session_factory(reader_engine)) as session:
                reports.append(audit.verify_chain(session))
    finally:
        stop.set()
        appender.join(timeout=30)
        writer_engine.dispose()
        reader_engine.dispose()
    assert not appender.is_alive()
    assert all(report.ok for report in reports), [r for r in reports if not r.ok][:3]
    assert reports[-1].entries_checked > reports[0].entries_checked  # it did read a growing log
