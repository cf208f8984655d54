"""The pytest plugin's fixtures (konbini_pytest), used as a harness's tests would use them:
the real `certserver serve` process, a virtual card in pcscd's vpcd reader (in-process
without pcscd) and the headless kiosk; every handle is seen by the running service."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cardreader.virtualcard import CorruptedByte, ForcedStatus, PulledOut, RefusesPowerOn
from konbini_common.japan import JST
from konbini_pytest import HarnessCard, HarnessKiosk, KonbiniService
from konbini_pytest import plugin as konbini_plugin


def test_a_visit_issues_a_juminhyo_paid_with_change(konbini_service, virtual_card, kiosk_driver) -> None:  # type: ignore[no-untyped-def]
    card: HarnessCard = virtual_card("toride-0001")
    kiosk: HarnessKiosk = kiosk_driver(card)
    visit = kiosk.visit("juminhyo", persons="self", copies=1, pay=1000)
    assert visit.issued, visit
    assert visit.fee > 0 and visit.paid == 1000 and visit.change == 1000 - visit.fee
    assert len(visit.documents) == 1 and visit.documents[0].read_bytes().startswith(b"%PDF")
    assert visit.steps[:2] == ("start", "service_menu") and "payment" in visit.steps
    assert card.tries_left == 3
    assert kiosk.visit("juminhyo").issued, "a second visit with the same card"


def test_a_revoked_card_is_refused_by_the_running_service(konbini_service, virtual_card, kiosk_driver) -> None:  # type: ignore[no-untyped-def]
    service: KonbiniService = konbini_service
    card = virtual_card("toride-0001")
    assert card.serial in service.revoke_card(card.serial, reason="lost")
    visit = kiosk_driver(card).visit("juminhyo")
    assert (visit.status, visit.rule_code) == ("error", "certificate_revoked"), visit
    assert visit.paid == 0 and visit.documents == ()


def test_a_stopped_municipality_issues_nothing_until_it_resumes(konbini_service, virtual_card, kiosk_driver) -> None:  # type: ignore[no-untyped-def]
    service: KonbiniService = konbini_service
    kiosk = kiosk_driver(virtual_card("toride-0001"))
    service.stop_municipality("08217", reason="system maintenance")
    stopped = kiosk.visit("juminhyo")
    assert (stopped.status, stopped.rule_code) == ("error", "municipality_stopped"), stopped
    service.resume_municipality("08217")
    assert kiosk.visit("juminhyo").issued


def test_moving_the_clock_past_closing_time_closes_the_service(konbini_service, virtual_card, kiosk_driver) -> None:  # type: ignore[no-untyped-def]
    service: KonbiniService = konbini_service
    before = service.now()
    to_midnight = dt.datetime.combine(before.astimezone(JST).date() + dt.timedelta(days=1), dt.time(0, 30), JST)
    running = service.pid
    moved = service.move_clock(by=to_midnight - before)
    assert moved.astimezone(JST).hour == 0
    assert service.pid == running is not None  # the same process follows: no restart
    visit = kiosk_driver(virtual_card("toride-0001")).visit("juminhyo")
    assert (visit.status, visit.rule_code) == ("error", "outside_hours"), visit


def test_a_wrong_pin_costs_one_try_and_a_locked_pin_is_reset(konbini_service, virtual_card, kiosk_driver) -> None:  # type: ignore[no-untyped-def]
    card = virtual_card("toride-0001")
    kiosk = kiosk_driver(card)
    wrong = kiosk.visit("juminhyo", pin="0000" if card.pin != "0000" else "1111")
    assert (wrong.rule_code, wrong.tries_left, card.tries_left) == ("wrong_pin", 2, 2), wrong
    card.lock_pin()
    assert card.tries_left == 0
    locked = kiosk.visit("juminhyo")
    assert locked.rule_code == "pin_locked", locked
    card.reset_pin("4321")
    assert card.tries_left == 3 and card.pin == "4321"
    assert kiosk.visit("juminhyo").issued


def test_a_card_issued_for_the_test_is_served(konbini_service, virtual_card, kiosk_driver) -> None:  # type: ignore[no-untyped-def]
    card = virtual_card("toride-0002", issue=True, pin="2468")
    assert card.path.parent != konbini_service.cards_dir
    assert kiosk_driver(card).visit("juminhyo").issued


def test_step_by_step_the_card_pulled_during_the_pin_ends_the_visit(
    konbini_service, virtual_card, kiosk_driver
) -> None:  # type: ignore[no-untyped-def]
    card = virtual_card("toride-0001")
    kiosk = kiosk_driver(card)
    kiosk.begin()
    assert kiosk.step == "pin"
    card.remove()
    visit = kiosk.enter_pin()
    assert visit is not None and visit.rule_code == "card_removed", visit
    assert card.tries_left == 3
    assert kiosk.visit("juminhyo").issued, "the card placed again at the next visit"


def test_step_by_step_the_pin_time_out_fires(konbini_service, virtual_card, kiosk_driver) -> None:  # type: ignore[no-untyped-def]
    kiosk = kiosk_driver(virtual_card("toride-0001"))
    kiosk.begin()
    assert kiosk.wait(3600) == "failed"
    assert kiosk.flow.failure is not None and kiosk.flow.failure.value == "timed_out"
    visit = kiosk.cancel()
    assert visit.rule_code == "timed_out" and visit.paid == 0


def test_step_by_step_too_little_money_is_given_back(konbini_service, virtual_card, kiosk_driver) -> None:  # type: ignore[no-untyped-def]
    kiosk = kiosk_driver(virtual_card("toride-0001"))
    kiosk.begin()
    assert kiosk.enter_pin() is None
    assert kiosk.order("juminhyo") is None
    assert kiosk.fee > 10
    visit = kiosk.pay(10)
    assert (visit.status, visit.rule_code, visit.documents, visit.change) == ("error", "payment_cancelled", (), 0)


def test_an_in_process_card_with_a_fault_shows_the_unreadable_card_screen(
    konbini_service, virtual_card, kiosk_driver
) -> None:  # type: ignore[no-untyped-def]
    card = virtual_card("toride-0001", transport="inprocess")
    assert card.transport == "inprocess"
    card.faults.add(ForcedStatus(0x6581, "read-binary"))
    visit = kiosk_driver(card).visit("juminhyo")
    assert visit.rule_code == "card_unreadable", visit
    assert card.faults.hits


def test_a_pcsc_card_is_skipped_with_the_reason_when_pcscd_is_missing(virtual_card, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(konbini_plugin, "pcscd_ready", lambda: False)
    with pytest.raises(pytest.skip.Exception, match="pcscd with the vsmartcard vpcd driver is not running"):
        virtual_card("toride-0001", transport="pcsc")


def test_postgres_is_skipped_with_the_reason_when_not_configured(tmp_path: Path) -> None:
    test = tmp_path / "test_needs_postgres.py"
    test.write_text(
        "import pytest\n\n\n@pytest.mark.konbini_postgres\ndef test_needs_postgres(konbini_service):\n    pass\n"
    )
    env = {k: v for k, v in os.environ.items() if k != konbini_plugin.POSTGRES_VARIABLE}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", str(test)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert "1 skipped" in run.stdout, run.stdout
    assert "no PostgreSQL: CERTSERVER_TEST_POSTGRES_URL is not set" in run.stdout


@pytest.mark.parametrize(
    ("fault", "armed_at", "code"),
    [
        (PulledOut(during=1), "pin", "card_removed"),
        (ForcedStatus(0x6F00, "sign"), "pin", "card_unreadable"),
        (CorruptedByte("sign", 40), "pin", "certificate_rejected"),
        (RefusesPowerOn(), "start", "card_unreadable"),
    ],
    ids=["pulled out during the PIN", "6F00 on the signature", "corrupted signature", "no answer to reset"],
)
def test_the_kiosk_through_pcscd_ends_each_card_fault_on_its_screen(  # type: ignore[no-untyped-def]
    konbini_service, virtual_card, kiosk_driver, fault, armed_at, code
) -> None:
    """The same faults as tests/kiosk/test_kiosk_card_faults.py, through pcscd and vpcd."""
    card = virtual_card("toride-0001", transport="pcsc")
    kiosk = kiosk_driver(card)
    if armed_at == "start":
        card.faults.add(fault)
        card.remove()  # placed again with the fault: the reader powers it up anew
    kiosk.begin()
    if armed_at == "pin":
        assert kiosk.step == "pin"
        card.faults.add(fault)
        ended = kiosk.enter_pin()
    else:
        ended = kiosk.enter_pin() if kiosk.step == "pin" else kiosk.cancel()
    assert ended is not None and (ended.status, ended.rule_code) == ("error", code), ended
    assert ended.paid == 0 and ended.documents == ()
    assert card.faults.hits and card.tries_left == 3
    card.faults.clear()
    card.remove()
    assert kiosk.visit("juminhyo").issued, "the card, behaving again, is served"


@pytest.mark.konbini_postgres
@pytest.mark.postgres
def test_the_service_on_postgresql_issues_a_visit(konbini_service, virtual_card, kiosk_driver) -> None:  # type: ignore[no-untyped-def]
    assert konbini_service.database_url.startswith("postgresql")
    visit = kiosk_driver(virtual_card("toride-0001")).visit("juminhyo", pay=1000)
    assert visit.issued, visit
