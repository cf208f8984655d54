"""The line between the kiosk and the service breaks: requests arrive late, answers are cut,
requests are delivered twice, the service refuses connections. A fault-injecting proxy
(konbini_testkit.faultproxy) stands between a real kiosk flow and the real service on
127.0.0.1. Whatever the fault, the person sees a clear outcome, a transaction ends whole,
nothing is done twice, and no fee is kept for a certificate that was not printed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from servicekit import Service
from sqlalchemy import select

from certserver.db.models.transactions import AuditEntry, IssuedDocument, KioskTransaction
from kiosk.card import VirtualCardReader
from kiosk.client import ClientSettings, ServiceClient
from kiosk.driver import Driver, VisitResult, VisitScript
from kiosk.flow import KioskFlow
from kiosk.outcome_reports import OutcomeReports
from kiosk.payment import CashAcceptor
from kiosk.printer import Printer
from kiosk.runner import EffectRunner
from konbini_testkit.faultproxy import Fault, FaultProxy

KIOSK_TIMEOUT_SECONDS = 1.5  # the kiosk's HTTP time-out in these tests; faults hold longer


@dataclass
class Kiosk:
    """A kiosk whose line to the service runs through `proxy`."""

    service: Service
    proxy: FaultProxy
    folder: Path

    def visit(self) -> tuple[VisitResult, CashAcceptor]:
        card = next(c for c in self.service.cards.values() if c.expected_issued)
        cash = CashAcceptor()
        settings = ClientSettings(
            self.proxy.url, self.service.kiosk_id, self.service.kiosk_secret, KIOSK_TIMEOUT_SECONDS
        )
        with ServiceClient(settings) as client:
            runner = EffectRunner(
                VirtualCardReader(str(card.path)),
                client,
                cash,
                Printer(self.folder / "tray"),
                reports=OutcomeReports(self.folder / "reports"),
            )
            result = Driver(KioskFlow(), runner).visit(VisitScript(pin=card.pin, certificate="juminhyo"))
        return result, cash

    def deliver_kept_reports(self) -> None:
        settings = ClientSettings(self.service.url, self.service.kiosk_id, self.service.kiosk_secret, 10.0)
        with ServiceClient(settings) as client:
            OutcomeReports(self.folder / "reports").deliver(client)

    def transaction(self, transaction_id: str | None) -> KioskTransaction:
        rows = self.service.query(select(KioskTransaction).where(KioskTransaction.id == transaction_id))
        assert len(rows) == 1
        return rows[0][0]

    def document_states(self, transaction_id: str | None) -> list[str]:
        rows = self.service.query(select(IssuedDocument.status).where(IssuedDocument.transaction_id == transaction_id))
        return [str(row[0]) for row in rows]

    def audit_actions(self, transaction_id: str | None, action: str) -> list[str]:
        rows = self.service.query(
            select(AuditEntry.outcome).where(AuditEntry.transaction_id == transaction_id, AuditEntry.action == action)
        )
        return [row[0] for row in rows]


@pytest.fixture
def kiosk(service: Service, tmp_path: Path) -> Iterator[Kiosk]:
    with FaultProxy(int(service.url.rsplit(":", 1)[1])) as proxy:
        yield Kiosk(service, proxy, tmp_path / "kiosk")


def test_a_document_download_cut_by_a_reset_is_fetched_again_and_printed(kiosk: Kiosk) -> None:
    kiosk.proxy.add(Fault("reset", r"GET .*/documents/", after_bytes=300))

    result, cash = kiosk.visit()

    assert kiosk.proxy.hits("reset"), "the fault never hit"
    assert result.status == "issued" and len(result.documents) == 1
    assert cash.cash_box_yen == result.fee == 200
    assert kiosk.transaction(result.transaction_id).state == "printed"
    assert kiosk.document_states(result.transaction_id) == ["issued"]


def test_a_payment_stuck_beyond_the_time_out_returns_the_cash_and_keeps_no_fee(kiosk: Kiosk) -> None:
    # Both tries of the payment are held past the kiosk's time-out, then delivered: the
    # service may record the payment after the kiosk has given the money back.
    kiosk.proxy.add(Fault("delay", r"POST .*/payment$", seconds=KIOSK_TIMEOUT_SECONDS + 1.5, times=2))

    result, cash = kiosk.visit()
    kiosk.deliver_kept_reports()

    assert len(kiosk.proxy.hits("delay")) == 2
    assert result.status == "error" and result.error_code == "service_slow"
    assert cash.cash_box_yen == 0 and cash.returned_yen == 200
    assert result.documents == []
    tx = kiosk.transaction(result.transaction_id)
    assert tx.state == "cancelled"
    assert (tx.paid_yen or 0) == (tx.refunded_yen or 0), "a fee kept for nothing printed"
    assert kiosk.document_states(result.transaction_id) == ["withdrawn"]


def test_a_payment_delivered_twice_is_taken_once(kiosk: Kiosk) -> None:
    kiosk.proxy.add(Fault("duplicate", r"POST .*/payment$"))

    result, cash = kiosk.visit()

    assert kiosk.proxy.hits("duplicate")
    assert result.status == "issued"
    assert cash.cash_box_yen == 200
    tx = kiosk.transaction(result.transaction_id)
    assert (tx.state, tx.paid_yen) == ("printed", 200)
    assert kiosk.audit_actions(result.transaction_id, "payment") == ["ok"]


def test_an_order_whose_answer_is_lost_is_replayed_not_ordered_twice(kiosk: Kiosk) -> None:
    kiosk.proxy.add(Fault("reset", r"POST .*/order$", after_bytes=0))

    result, _cash = kiosk.visit()

    assert kiosk.proxy.hits("reset")
    assert result.status == "issued"
    assert kiosk.audit_actions(result.transaction_id, "order") == ["ok"]
    assert kiosk.document_states(result.transaction_id) == ["issued"]


def test_the_printed_report_delivered_twice_settles_the_visit_once(kiosk: Kiosk) -> None:
    kiosk.proxy.add(Fault("duplicate", r"POST .*/printed$"))

    result, _cash = kiosk.visit()

    assert kiosk.proxy.hits("duplicate")
    assert result.status == "issued"
    assert kiosk.transaction(result.transaction_id).state == "printed"
    assert kiosk.audit_actions(result.transaction_id, "printed") == ["ok"]


def test_a_service_that_refuses_every_connection_takes_no_money_and_starts_nothing(kiosk: Kiosk) -> None:
    kiosk.proxy.add(Fault("refuse", "", times=None))

    result, cash = kiosk.visit()

    assert kiosk.proxy.hits("refuse")
    assert result.status == "error" and result.error_code == "service_unreachable"
    assert result.transaction_id is None
    assert cash.cash_box_yen == 0 and cash.returned_yen == 0
    assert kiosk.service.query(select(KioskTransaction.id)) == []
