"""The Textual kiosk, driven by Pilot like a person at the touch screen, against the real
service on 127.0.0.1 (SQLite in tmp_path, `certserver init --demo` data) with the real
virtual card in an in-process reader."""

from __future__ import annotations

from pathlib import Path

import pytest
from appkit import (
    click,
    make_kiosk,
    start_to_card,
    steps_entered,
    to_municipality,
    until,
    until_true,
)
from pypdf import PdfReader
from servicekit import Service
from sqlalchemy import select
from textual.widgets import Button, Static

from certserver.db.models.transactions import IssuedDocument, KioskTransaction
from kiosk import flow as f
from kiosk.app import KioskApp
from kiosk.i18n import text

SIZE = (100, 30)
pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def tx_state(service: Service, transaction_id: str) -> str:
    (row,) = service.query(select(KioskTransaction.state).where(KioskTransaction.id == transaction_id))
    return str(row[0])


async def choose(pilot, app: KioskApp, kind: str) -> None:  # type: ignore[no-untyped-def]
    """Pick the first municipality offering `kind`, then `kind`."""
    assert app.flow.menu is not None
    for index, municipality in enumerate(app.flow.menu.municipalities):
        if municipality.open and any(o.kind == kind and o.available for o in municipality.offers):
            await click(pilot, f"#municipality-{index}")
            break
    else:
        pytest.fail(f"{kind} is on no open municipality's menu")
    await until(pilot, f.Step.CERTIFICATE)
    await click(pilot, f"#kind-{kind}")


@pytest.mark.parametrize(
    ("resident_id", "kind"),
    [
        ("toride-0001", "juminhyo"),
        ("toride-0001", "kisaijiko"),
        ("toride-0001", "inkan"),
        ("toride-0001", "shotoku_kazei"),
        ("toride-0010", "koseki_zenbu"),
        ("toride-0010", "koseki_kojin"),
        ("toride-0010", "koseki_fuhyo"),
        ("toride-0001", "koseki_zenbu"),  # from the 本籍地 (つくば市)
        ("toride-0020", "juminhyo"),  # a foreign resident
    ],
)
async def test_the_whole_visit_issues_each_certificate_type(
    service: Service, tmp_path: Path, resident_id: str, kind: str
) -> None:
    kiosk = make_kiosk(service, resident_id, tmp_path)
    app = kiosk.app
    async with app.run_test(size=SIZE, message_hook=kiosk.messages.append) as pilot:
        await until(pilot, f.Step.START)
        await to_municipality(pilot, kiosk, service.card(resident_id).pin)
        transaction_id = app.flow.transaction_id
        assert transaction_id is not None
        await choose(pilot, app, kind)
        if app.flow.step is f.Step.PERSONS:
            await click(pilot, "#next")
        await until(pilot, f.Step.COPIES)
        await click(pilot, "#next")
        await until(pilot, f.Step.CONFIRM)
        await click(pilot, "#confirm")
        await until(pilot, f.Step.PAYMENT)
        fee = app.flow.fee_yen
        await click(pilot, "#cash-1000")
        await until(pilot, f.Step.TAKE_ITEMS)
        assert app.flow.receipt is not None and app.flow.receipt.change_yen == 1000 - fee
        assert not app.flow.holds_personal_data
        # The certificate and, beside it, the 利用明細 (receipt) with the fee and the change
        # (printed by a worker while this screen shows).
        await until_true(pilot, lambda: (kiosk.printed / f"{transaction_id}-receipt.pdf").exists())
        printed = sorted(kiosk.printed.iterdir())
        assert [p.name for p in printed] == [f"{transaction_id}-1.pdf", f"{transaction_id}-receipt.pdf"]
        receipt = PdfReader(printed[1]).pages[0].extract_text()
        assert f"{fee:,}円" in receipt and f"{1000 - fee:,}円" in receipt and transaction_id[:16] in receipt
        assert printed[0].read_bytes().startswith(b"%PDF")
        await click(pilot, "#acknowledge")
        await until(pilot, f.Step.START)
        assert not app.flow.holds_personal_data
    assert tx_state(service, transaction_id) == "printed"
    docs = service.query(
        select(IssuedDocument.status, IssuedDocument.pdf).where(IssuedDocument.transaction_id == transaction_id)
    )
    assert [(str(status), pdf) for status, pdf in docs] == [("issued", None)]  # erased after printing
    entered = steps_entered(kiosk.messages)
    for step in (f.Step.PIN, f.Step.REMOVE_CARD, f.Step.PAYMENT, f.Step.PRINTING, f.Step.TAKE_ITEMS):
        assert step in entered
    assert entered[-1] is f.Step.START


async def test_a_card_placed_before_the_screen_asks_goes_straight_to_the_pin(service: Service, tmp_path: Path) -> None:
    kiosk = make_kiosk(service, "toride-0001", tmp_path, placed=True)
    async with kiosk.app.run_test(size=SIZE, message_hook=kiosk.messages.append) as pilot:
        await start_to_card(pilot)
        await until(pilot, f.Step.PIN)
        assert f.Step.READING_CARD in steps_entered(kiosk.messages)
        assert "3" in str(kiosk.app.screen.query_one("#tries-left").render())


async def test_wrong_pins_show_the_tries_left_then_the_last_try_warning_then_the_lock(
    service: Service, tmp_path: Path
) -> None:
    card = service.card("toride-0002")
    wrong = "9999" if card.pin != "9999" else "8888"
    kiosk = make_kiosk(service, "toride-0002", tmp_path, placed=True)
    app = kiosk.app
    async with app.run_test(size=SIZE, message_hook=kiosk.messages.append) as pilot:
        await start_to_card(pilot)
        await until(pilot, f.Step.PIN)
        await pilot.press(*wrong, "enter")
        await until_true(pilot, lambda: app.flow.tries_left == 2 and bool(app.screen.query("#pin-wrong")))
        assert not app.screen.query("#last-try")
        await pilot.press(*wrong, "enter")
        await until_true(pilot, lambda: bool(app.screen.query("#last-try")))
        assert app.flow.tries_left == 1
        transaction_id = app.flow.transaction_id
        await pilot.press(*wrong, "enter")
        await until(pilot, f.Step.FAILED)
        assert app.flow.failure is f.Failure.PIN_LOCKED
        assert "窓口" in str(app.screen.query_one("#failure").render())
    assert tx_state(service, transaction_id) == "cancelled"


async def test_a_locked_card_is_sent_to_the_city_office_at_once(service: Service, tmp_path: Path) -> None:
    from konbini_common.cardfile import CardFile

    path = service.card("toride-0003").path
    card = CardFile.load(path)
    card.pins["auth"].tries_left = 0
    card.save(path)
    kiosk = make_kiosk(service, "toride-0003", tmp_path, placed=True)
    async with kiosk.app.run_test(size=SIZE) as pilot:
        await start_to_card(pilot)
        await until(pilot, f.Step.FAILED)
        assert kiosk.app.flow.failure is f.Failure.PIN_LOCKED


async def test_removing_the_card_at_the_pin_step_cancels_the_transaction(service: Service, tmp_path: Path) -> None:
    kiosk = make_kiosk(service, "toride-0001", tmp_path, placed=True)
    async with kiosk.app.run_test(size=SIZE) as pilot:
        await start_to_card(pilot)
        await until(pilot, f.Step.PIN)
        transaction_id = kiosk.app.flow.transaction_id
        kiosk.reader.take()
        await until(pilot, f.Step.FAILED)
        assert kiosk.app.flow.failure is f.Failure.CARD_REMOVED
        await pilot.pause(0.3)
    assert tx_state(service, transaction_id) == "cancelled"


async def test_an_idle_pin_step_times_out_with_a_visible_countdown(service: Service, tmp_path: Path) -> None:
    kiosk = make_kiosk(service, "toride-0001", tmp_path, placed=True, idle_timeout=2.0)
    async with kiosk.app.run_test(size=SIZE) as pilot:
        await start_to_card(pilot)
        await until(pilot, f.Step.PIN)
        transaction_id = kiosk.app.flow.transaction_id
        await pilot.pause(0.5)
        assert "残り" in str(kiosk.app.screen.query_one("#countdown").render())
        await until(pilot, f.Step.FAILED)
        assert kiosk.app.flow.failure is f.Failure.TIMED_OUT
        await pilot.pause(0.3)
    assert tx_state(service, transaction_id) == "cancelled"


async def test_cancel_at_the_certificate_step_cancels_the_transaction(service: Service, tmp_path: Path) -> None:
    kiosk = make_kiosk(service, "toride-0001", tmp_path)
    async with kiosk.app.run_test(size=SIZE) as pilot:
        await to_municipality(pilot, kiosk, service.card("toride-0001").pin)
        transaction_id = kiosk.app.flow.transaction_id
        await click(pilot, "#municipality-0")
        await until(pilot, f.Step.CERTIFICATE)
        await click(pilot, "#cancel")
        await until(pilot, f.Step.FAILED)
        assert kiosk.app.flow.failure is f.Failure.CANCELLED and not kiosk.app.flow.holds_personal_data
        await click(pilot, "#acknowledge")
        await until(pilot, f.Step.START)
    assert tx_state(service, transaction_id) == "cancelled"


async def test_a_revoked_certificate_is_refused(service: Service, tmp_path: Path) -> None:
    from cryptography import x509

    from certserver.services.cards import revoke_card
    from konbini_common.cardfile import CardFile

    serial = format(
        x509.load_der_x509_certificate(CardFile.load(service.card("toride-0001").path).auth_certificate).serial_number,
        "X",
    )
    # Revoked at the service's own time, which runs days ahead of the wall clock outside office hours.
    service.change(lambda session: revoke_card(session, serial, "key_compromise", now=service.now()))
    kiosk = make_kiosk(service, "toride-0001", tmp_path, placed=True)
    async with kiosk.app.run_test(size=SIZE) as pilot:
        await start_to_card(pilot)
        await until(pilot, f.Step.PIN)
        await pilot.press(*service.card("toride-0001").pin, "enter")
        await until(pilot, f.Step.FAILED)
        assert kiosk.app.flow.failure is f.Failure.CERTIFICATE_REVOKED


async def test_an_unreachable_service_is_reported(service: Service, tmp_path: Path) -> None:
    kiosk = make_kiosk(service, "toride-0001", tmp_path, placed=True, server_url="http://127.0.0.1:9")
    async with kiosk.app.run_test(size=SIZE) as pilot:
        await start_to_card(pilot)
        await until(pilot, f.Step.FAILED)
        assert kiosk.app.flow.failure is f.Failure.SERVICE_UNREACHABLE


async def test_a_service_that_does_not_answer_in_time_is_reported(service: Service, tmp_path: Path) -> None:
    import socket

    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        kiosk = make_kiosk(service, "toride-0001", tmp_path, placed=True, server_url=url, http_timeout=0.3)
        async with kiosk.app.run_test(size=SIZE) as pilot:
            await start_to_card(pilot)
            await until(pilot, f.Step.FAILED)
            assert kiosk.app.flow.failure is f.Failure.SERVICE_SLOW


async def test_when_every_municipality_is_stopped_the_visit_ends(service: Service, tmp_path: Path) -> None:
    from certserver.db.models.registry import Municipality

    def stop_all(session) -> None:  # type: ignore[no-untyped-def]
        for municipality in session.scalars(select(Municipality)):
            municipality.stopped = True
            municipality.stop_reason = "test"

    service.change(stop_all)
    kiosk = make_kiosk(service, "toride-0001", tmp_path)
    async with kiosk.app.run_test(size=SIZE) as pilot:
        await start_to_card(pilot)
        await until(pilot, f.Step.PLACE_CARD)
        kiosk.reader.place()
        await until(pilot, f.Step.PIN)
        await pilot.press(*service.card("toride-0001").pin, "enter")
        await until(pilot, f.Step.REMOVE_CARD)
        kiosk.reader.take()
        await until(pilot, f.Step.FAILED)
        assert kiosk.app.flow.failure is f.Failure.MUNICIPALITY_CLOSED


async def test_a_document_the_rules_refuse_at_ordering_shows_the_rules_own_message(
    service: Service, tmp_path: Path
) -> None:
    from certserver.db.models.registry import Resident

    kiosk = make_kiosk(service, "toride-0001", tmp_path, language="en")
    async with kiosk.app.run_test(size=SIZE) as pilot:
        await to_municipality(pilot, kiosk, service.card("toride-0001").pin)
        await choose(pilot, kiosk.app, "inkan")
        await until(pilot, f.Step.COPIES)
        await click(pilot, "#next")
        await until(pilot, f.Step.CONFIRM)
        # A notified change arrives while the person stands at the kiosk.
        service.change(lambda session: setattr(session.get(Resident, "toride-0001"), "status", "change_pending"))
        transaction_id = kiosk.app.flow.transaction_id
        await click(pilot, "#confirm")
        await until(pilot, f.Step.FAILED)
        assert kiosk.app.flow.failure is f.Failure.DOCUMENT_REFUSED
        shown = screen_text(kiosk.app)
        assert shown.count(text(kiosk.app.flow.language, "refusal.change_pending")) == 1
        assert "時間をおいて" not in shown
        await pilot.pause(0.3)
    assert tx_state(service, transaction_id) == "cancelled"


def screen_text(app: KioskApp) -> str:
    """Everything the current screen writes, widget by widget."""
    return "\n".join(str(widget.render()) for widget in app.screen.query(Static))


@pytest.mark.parametrize(
    ("resident_id", "code"),
    [
        ("toride-0004", "under_15"),
        ("toride-0030", "resident_moved_out"),
        ("toride-0070", "gaiji_in_record"),
        ("toride-0040", "not_available_at_kiosk"),  # a DV support measure
    ],
)
@pytest.mark.parametrize("language", ["ja", "en"])
async def test_a_card_holder_the_rules_refuse_sees_the_rules_message_never_a_fault_or_a_support_measure(
    service: Service, tmp_path: Path, resident_id: str, code: str, language: str
) -> None:
    kiosk = make_kiosk(service, resident_id, tmp_path, placed=True)
    app = kiosk.app
    async with app.run_test(size=SIZE) as pilot:
        await start_to_card(pilot, language)
        await until(pilot, f.Step.PIN)
        await pilot.press(*service.card(resident_id).pin, "enter")
        await until(pilot, f.Step.FAILED)
        shown = screen_text(app)
        assert app.flow.failure is f.Failure.HOLDER_REFUSED and app.flow.refusal_code == code
        assert text(language, f"refusal.{code}") in shown
        for fault in ("later", "時間をおいて", "エラー", "error"):
            assert fault not in shown.lower()
        for support_measure in ("支援", "support measure", "DV", "dv_support"):
            assert support_measure not in shown
        assert [outcome.outcome for outcome in kiosk.app.devices.runner.outcomes] == [code]


async def test_cancelling_the_payment_returns_the_money(service: Service, tmp_path: Path) -> None:
    kiosk = make_kiosk(service, "toride-0001", tmp_path)
    async with kiosk.app.run_test(size=SIZE) as pilot:
        await to_municipality(pilot, kiosk, service.card("toride-0001").pin)
        await choose(pilot, kiosk.app, "inkan")
        await until(pilot, f.Step.COPIES)
        await click(pilot, "#next")
        await until(pilot, f.Step.CONFIRM)
        await click(pilot, "#confirm")
        await until(pilot, f.Step.PAYMENT)
        transaction_id = kiosk.app.flow.transaction_id
        await click(pilot, "#cash-100")
        await until_true(pilot, lambda: "100" in str(kiosk.app.screen.query_one("#paid").render()))
        await click(pilot, "#cancel")
        await until(pilot, f.Step.FAILED)
        assert kiosk.app.flow.failure is f.Failure.PAYMENT_CANCELLED
        assert "100" in str(kiosk.app.screen.query_one("#refunded").render())
        await pilot.pause(0.3)
    acceptor = kiosk.app.devices.runner.acceptor
    assert acceptor.returned_yen == 100 and acceptor.cash_box_yen == 0
    assert tx_state(service, transaction_id) == "cancelled"
    assert not kiosk.printed.exists()


async def test_out_of_paper_is_said_when_a_visit_starts_and_a_refill_lets_it_through(
    service: Service, tmp_path: Path
) -> None:
    """The operator empties the paper: 証明書交付サービス is unavailable and says why before
    any PIN or choice; after a refill the whole visit goes through."""
    kiosk = make_kiosk(service, "toride-0001", tmp_path)
    app = kiosk.app
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f12")
        await pilot.pause()
        await pilot.press(*"1111", "enter")  # a wrong code keeps the panel shut
        await pilot.pause()
        assert app.screen.query_one("#operator-error")
        await pilot.press(*"8642", "enter")
        await pilot.pause(0.2)
        assert app.screen.query_one("#paper")
        await click(pilot, "#paper-empty")
        await until_true(pilot, lambda: app.devices.runner.printer.sheets == 0 and app.flow.paper_sheets == 0)
        await click(pilot, "#operator-close")
        await until(pilot, f.Step.START)
        await click(pilot, "#gyosei")
        await until(pilot, f.Step.SERVICE_MENU)
        assert app.screen.query_one("#certificates", Button).disabled
        assert "用紙切れ" in str(app.screen.query_one("#certificates-why", Static).render())
        app.feed(f.Pressed(f.Action.CERTIFICATES))  # a press that gets through anyway
        await pilot.pause()
        assert app.flow.step is f.Step.SERVICE_MENU
        await pilot.press("f12")
        await pilot.pause()
        await pilot.press(*"8642", "enter")
        await pilot.pause(0.2)
        await click(pilot, "#paper-refill")
        await click(pilot, "#operator-close")
        await until_true(pilot, lambda: not app.screen.query_one("#certificates", Button).disabled)
        await click(pilot, "#back")
        await until(pilot, f.Step.START)
        await to_municipality(pilot, kiosk, service.card("toride-0001").pin)
        await choose(pilot, app, "inkan")
        await until(pilot, f.Step.COPIES)


@pytest.fixture
def service_six_years_on(demo_template, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The service with its clock six years ahead: every card certificate has expired."""
    import datetime as dt

    from servicekit import start_service

    yield from start_service(demo_template, tmp_path / "later", shift=dt.timedelta(days=6 * 366))


async def test_an_expired_certificate_is_sent_to_the_city_office(service_six_years_on: Service, tmp_path: Path) -> None:
    service = service_six_years_on
    kiosk = make_kiosk(service, "toride-0001", tmp_path, placed=True)
    async with kiosk.app.run_test(size=SIZE) as pilot:
        await start_to_card(pilot)
        await until(pilot, f.Step.PIN)
        await pilot.press(*service.card("toride-0001").pin, "enter")
        await until(pilot, f.Step.FAILED)
        assert kiosk.app.flow.failure is f.Failure.CERTIFICATE_EXPIRED
        assert "有効期限" in str(kiosk.app.screen.query_one("#failure").render())


async def test_closing_the_kiosk_mid_visit_cancels_the_transaction(service: Service, tmp_path: Path) -> None:
    kiosk = make_kiosk(service, "toride-0001", tmp_path, placed=True)
    async with kiosk.app.run_test(size=SIZE) as pilot:
        await start_to_card(pilot)
        await until(pilot, f.Step.PIN)
        transaction_id = kiosk.app.flow.transaction_id
    assert tx_state(service, transaction_id) == "cancelled"


async def test_paper_running_out_after_payment_returns_the_money_and_prints_nothing(
    service: Service, tmp_path: Path
) -> None:
    kiosk = make_kiosk(service, "toride-0001", tmp_path)
    app = kiosk.app
    async with app.run_test(size=SIZE) as pilot:
        await to_municipality(pilot, kiosk, service.card("toride-0001").pin)
        await choose(pilot, app, "inkan")
        await until(pilot, f.Step.COPIES)
        await click(pilot, "#next")
        await until(pilot, f.Step.CONFIRM)
        await click(pilot, "#confirm")
        await until(pilot, f.Step.PAYMENT)
        transaction_id = app.flow.transaction_id
        app.devices.runner.printer.load_paper(0)  # the tray empties while the person pays
        await click(pilot, "#cash-1000")
        await until(pilot, f.Step.FAILED)
        assert app.flow.failure is f.Failure.PRINTER_OUT_OF_PAPER
        assert "1000" in str(app.screen.query_one("#refunded").render())
        await pilot.pause(0.3)
    assert app.devices.runner.acceptor.returned_yen == 1000 and app.devices.runner.acceptor.cash_box_yen == 0
    assert tx_state(service, transaction_id) == "cancelled"
    assert not kiosk.printed.exists() or not any(kiosk.printed.iterdir())


async def test_a_whole_household_juminhyo_with_the_head_of_household_names_everyone_chosen(
    service: Service, tmp_path: Path
) -> None:
    from pypdf import PdfReader
    from textual.widgets import Checkbox, Static

    kiosk = make_kiosk(service, "toride-0001", tmp_path)
    app = kiosk.app
    async with app.run_test(size=SIZE) as pilot:
        await to_municipality(pilot, kiosk, service.card("toride-0001").pin)
        await choose(pilot, app, "juminhyo")
        await until(pilot, f.Step.PERSONS)
        offer = app.flow.selection.offer
        assert offer is not None and len(offer.persons) > 1
        names = [p.name for p in offer.persons]
        setainushi = [o.code for o in offer.options].index("setainushi")
        for selector in ("#whole-household", f"#option-{setainushi}"):
            box = app.screen.query_one(selector, Checkbox)
            box.scroll_visible(animate=False, immediate=True)
            await pilot.pause()
            await pilot.click(selector)
            await pilot.pause()
        await until_true(
            pilot, lambda: app.flow.selection.whole_household and app.flow.selection.options == {"setainushi"}
        )
        await click(pilot, "#next")
        await until(pilot, f.Step.COPIES)
        await click(pilot, "#next")
        await until(pilot, f.Step.CONFIRM)
        shown = " ".join(str(widget.render()) for widget in app.screen.query(Static))
        assert "世帯全員" in shown and str(app.flow.fee_yen) in shown
        await click(pilot, "#confirm")
        await until(pilot, f.Step.PAYMENT)
        await click(pilot, "#cash-1000")
        await until(pilot, f.Step.TAKE_ITEMS)
    (printed,) = (p for p in kiosk.printed.iterdir() if not p.name.endswith("-receipt.pdf"))
    text = "".join(page.extract_text() or "" for page in PdfReader(printed).pages)
    squashed = "".join(text.split()).replace("\u3000", "")
    for name in names:
        assert "".join(name.split()).replace("\u3000", "") in squashed, name


async def test_a_card_left_on_the_reader_raises_the_alarm_and_is_not_read_for_the_next_visit(
    service: Service, tmp_path: Path
) -> None:
    kiosk = make_kiosk(service, "toride-0001", tmp_path, placed=True)
    app = kiosk.app
    async with app.run_test(size=SIZE, message_hook=kiosk.messages.append) as pilot:
        await start_to_card(pilot)
        await until(pilot, f.Step.PIN)
        await click(pilot, "#cancel")
        await until(pilot, f.Step.FAILED)
        assert text("ja", "card_alarm.take_card") in screen_text(app)
        await click(pilot, "#acknowledge")
        await until(pilot, f.Step.START)
        assert app.screen.query("#card-alarm")  # still asking on the start screen
        kiosk.messages.clear()
        await start_to_card(pilot)
        await until(pilot, f.Step.PLACE_CARD)
        await pilot.pause(0.5)
        assert app.flow.step is f.Step.PLACE_CARD and f.Step.READING_CARD not in steps_entered(kiosk.messages)
        assert app.screen.query("#use-card") and app.screen.query("#card-alarm")
        kiosk.reader.take()
        await until_true(pilot, lambda: not app.screen.query("#card-alarm") and not app.screen.query("#use-card"))
        kiosk.reader.place()
        await until(pilot, f.Step.PIN)


async def test_the_holder_of_a_card_left_on_the_reader_can_confirm_it_is_theirs(
    service: Service, tmp_path: Path
) -> None:
    kiosk = make_kiosk(service, "toride-0001", tmp_path, placed=True)
    app = kiosk.app
    async with app.run_test(size=SIZE) as pilot:
        await start_to_card(pilot)
        await until(pilot, f.Step.PIN)
        await click(pilot, "#cancel")
        await until(pilot, f.Step.FAILED)
        await click(pilot, "#acknowledge")
        await until(pilot, f.Step.START)
        await start_to_card(pilot)
        await until(pilot, f.Step.PLACE_CARD)
        await click(pilot, "#use-card")
        await until(pilot, f.Step.PIN)


async def test_a_municipality_the_rules_close_to_the_person_says_why_beside_it(
    service: Service, tmp_path: Path
) -> None:
    kiosk = make_kiosk(service, "toride-0002", tmp_path)  # 本籍地 利用登録 not effective yet
    async with kiosk.app.run_test(size=SIZE) as pilot:
        await to_municipality(pilot, kiosk, service.card("toride-0002").pin)
        menu = kiosk.app.flow.menu
        assert menu is not None
        (index,) = [i for i, m in enumerate(menu.municipalities) if m.closed_reason == "honseki_registration_pending"]
        assert kiosk.app.screen.query_one(f"#municipality-{index}").disabled
        why = kiosk.app.screen.query_one(f"#municipality-{index}-why", Static)
        assert str(why.render()) == text("ja", "refusal.honseki_registration_pending")
