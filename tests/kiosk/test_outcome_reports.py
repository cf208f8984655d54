"""The kiosk never loses what it printed: the "printed" report is on disk before it is sent,
survives a lost service and a kiosk restart, and reaches the service before the kiosk
starts another transaction (which would otherwise supersede the printed one)."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

from servicekit import Service, select

from certserver.db.models.transactions import IssuedDocument, KioskTransaction
from kiosk.card import VirtualCardReader
from kiosk.client import ClientSettings, ServiceClient
from kiosk.config import KioskSettings, build_devices, outcome_reports_folder
from kiosk.driver import Driver, VisitScript
from kiosk.flow import KioskFlow
from kiosk.outcome_reports import OutcomeReports
from kiosk.runner import EffectRunner


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"  # nothing listens once closed


def _driver(service: Service, resident_id: str, printer_dir: Path) -> Driver:
    settings = KioskSettings(
        server_url=service.url, kiosk_id=service.kiosk_id, kiosk_secret=service.kiosk_secret, printer_dir=printer_dir
    )
    devices = build_devices(settings, reader=VirtualCardReader(str(service.card(resident_id).path)))
    return Driver(KioskFlow(), devices.runner)


def _lose_the_service_after_printing(runner: EffectRunner, service: Service) -> None:
    """The network to the service goes down the moment the paper is out (a real refused
    connection: the client is pointed at a closed port)."""
    print_documents = runner.printer.print_documents
    unreachable = ServiceClient(ClientSettings(_closed_port_url(), service.kiosk_id, service.kiosk_secret, 2.0))

    def print_then_lose(*args, **kwargs):  # type: ignore[no-untyped-def]
        files = print_documents(*args, **kwargs)
        runner.client = unreachable
        return files

    runner.printer.print_documents = print_then_lose  # type: ignore[method-assign]


def _state(service: Service, tx_id: str) -> tuple[str, list[str]]:
    (tx,) = service.query(select(KioskTransaction.state).where(KioskTransaction.id == tx_id))
    docs = service.query(select(IssuedDocument.status).where(IssuedDocument.transaction_id == tx_id))
    return tx[0], [d[0] for d in docs]


def test_a_printed_report_the_service_never_got_is_delivered_after_a_kiosk_restart(
    service: Service, tmp_path: Path
) -> None:
    card = service.card("toride-0001")
    printer_dir = tmp_path / "tray"
    first = _driver(service, "toride-0001", printer_dir)
    _lose_the_service_after_printing(first.runner, service)

    printed = first.visit(VisitScript(pin=card.pin))
    assert printed.status == "issued", printed  # the person has the paper and the change
    tx_id = printed.transaction_id
    assert tx_id is not None
    assert _state(service, tx_id) == ("released", ["pending"])  # the service has not heard
    kept = list(outcome_reports_folder(tmp_path / "kiosk-state", service.kiosk_id).iterdir())
    assert [p.name for p in kept] == [f"printed-{tx_id}.json"]
    assert stat.S_IMODE(kept[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(kept[0].parent.stat().st_mode) == 0o700
    assert card.name not in kept[0].read_text(encoding="ascii")

    # While the service is still out of reach, no new visit starts (it would supersede).
    first.reader.place()  # type: ignore[attr-defined]  # the next person's card
    refused = first.visit(VisitScript(pin=card.pin))
    assert refused.error_code == "service_unreachable"
    assert _state(service, tx_id) == ("released", ["pending"])

    # The kiosk restarts (a new process: only the disk is left) and the service is back.
    restarted = _driver(service, "toride-0001", printer_dir)
    assert [r.transaction_id for r in restarted.runner.reports.pending()] == [tx_id]
    again = restarted.visit(VisitScript(pin=card.pin))
    assert again.status == "issued", again
    assert _state(service, tx_id) == ("printed", ["issued"])
    assert _state(service, again.transaction_id or "") == ("printed", ["issued"])
    assert restarted.runner.reports.pending() == []


def test_a_refund_is_reported_as_a_cancel_that_outlives_the_lost_service(service: Service, tmp_path: Path) -> None:
    card = service.card("toride-0001")
    driver = _driver(service, "toride-0001", tmp_path / "tray")
    runner = driver.runner
    unreachable = ServiceClient(ClientSettings(_closed_port_url(), service.kiosk_id, service.kiosk_secret, 2.0))
    record_payment = runner._RecordPayment

    def pay_then_lose(effect, emit):  # type: ignore[no-untyped-def]
        record_payment(effect, emit)  # the service recorded the payment...
        runner.client = unreachable  # ...and then the network went down before the download

    runner._RecordPayment = pay_then_lose  # type: ignore[method-assign]
    refunded = driver.visit(VisitScript(pin=card.pin))
    assert refunded.status == "error" and refunded.error_code == "service_unreachable"
    tx_id = refunded.transaction_id
    assert tx_id is not None
    (paid,) = service.query(select(KioskTransaction.paid_yen).where(KioskTransaction.id == tx_id))
    assert paid[0] == refunded.fee  # the service holds a payment the kiosk gave back

    reports = OutcomeReports(outcome_reports_folder(tmp_path / "kiosk-state", service.kiosk_id))
    assert [(r.kind, r.transaction_id) for r in reports.pending()] == [("cancel", tx_id)]
    with ServiceClient(ClientSettings(service.url, service.kiosk_id, service.kiosk_secret)) as client:
        assert reports.deliver(client) == 0
    (row,) = service.query(
        select(KioskTransaction.state, KioskTransaction.refunded_yen).where(KioskTransaction.id == tx_id)
    )
    assert tuple(row) == ("cancelled", refunded.fee)
