"""The kiosk's state machine, step by step and failure by failure.

Pure unit tests: the card's and the service's answers are result events written here (an
in-test double of their answers, see flowkit.py); the screens, the driver and the CLI are
tested against the real service elsewhere.
"""

from __future__ import annotations

import pytest
from flowkit import (
    MENU,
    REF,
    Clock,
    new_flow,
    paid_to_printing,
    ticket,
    to_confirm,
    to_payment,
    to_pin,
    to_remove_card,
)

from kiosk import flow as f
from kiosk.models import DocumentRef, Menu, Municipality, MunicipalityRole, OrderAccepted


def test_start_leads_through_service_menu_language_and_terms_to_the_card_step() -> None:
    flow = new_flow()
    assert flow.step is f.Step.START
    flow.handle(f.Pressed(f.Action.GYOSEI))
    assert flow.step is f.Step.SERVICE_MENU
    flow.handle(f.Pressed(f.Action.CERTIFICATES))
    assert flow.step is f.Step.LANGUAGE
    flow.handle(f.LanguageChosen("en"))
    assert (flow.step, flow.language) == (f.Step.TERMS, "en")
    assert flow.handle(f.Pressed(f.Action.ACCEPT)) == []
    assert flow.step is f.Step.PLACE_CARD


def test_declining_the_terms_returns_to_start() -> None:
    flow = new_flow()
    flow.handle(f.Pressed(f.Action.GYOSEI))
    flow.handle(f.Pressed(f.Action.CERTIFICATES))
    flow.handle(f.LanguageChosen("ja"))
    flow.handle(f.Pressed(f.Action.DECLINE))
    assert flow.step is f.Step.START


def test_a_card_placed_before_the_screen_asks_is_read_on_accepting_the_terms() -> None:
    flow = new_flow()
    flow.handle(f.CardPlaced())
    flow.handle(f.Pressed(f.Action.GYOSEI))
    flow.handle(f.Pressed(f.Action.CERTIFICATES))
    flow.handle(f.LanguageChosen("ja"))
    effects = flow.handle(f.Pressed(f.Action.ACCEPT))
    assert flow.step is f.Step.READING_CARD
    assert [type(e) for e in effects] == [f.ReadCard]


def test_reading_the_card_starts_a_transaction_then_asks_for_the_pin() -> None:
    flow = new_flow()
    to_pin(flow, tries_left=2)
    assert flow.transaction_id == "tx-1"
    assert flow.tries_left == 2 and not flow.pin_error


def test_the_pin_goes_to_the_card_only_inside_one_sign_effect_and_is_not_kept() -> None:
    flow = new_flow()
    to_pin(flow)
    effects = flow.handle(f.PinEntered("4821"))
    (sign,) = effects
    assert isinstance(sign, f.SignChallenge) and sign.pin == "4821" and sign.challenge == b"CHALLENGE"
    assert "4821" not in repr(sign)
    assert "4821" not in repr(vars(flow)) and "4821" not in repr(vars(flow.selection))


@pytest.mark.parametrize("pin", ["123", "12345", "12a4", "", "١٢٣٤"])
def test_a_pin_that_is_not_four_ascii_digits_is_never_sent_to_the_card(pin: str) -> None:
    flow = new_flow()
    to_pin(flow)
    assert flow.handle(f.PinEntered(pin)) == []
    assert flow.step is f.Step.PIN


def test_a_wrong_pin_returns_to_the_pin_step_with_the_remaining_tries() -> None:
    flow = new_flow()
    to_pin(flow)
    effects = flow.handle(f.PinEntered("0000"))
    flow.handle(f.PinRejected(ticket(effects, f.SignChallenge), 1))
    assert flow.step is f.Step.PIN
    assert flow.pin_error and flow.tries_left == 1


def test_a_locked_pin_ends_the_visit_with_the_city_office_message_and_cancels_the_transaction() -> None:
    flow = new_flow()
    to_pin(flow)
    effects = flow.handle(f.PinEntered("0000"))
    effects = flow.handle(f.PinLocked(ticket(effects, f.SignChallenge)))
    assert flow.step is f.Step.FAILED and flow.failure is f.Failure.PIN_LOCKED
    assert f.CancelTransaction(0, "tx-1", "pin_locked") in effects
    assert not flow.holds_personal_data


def test_a_card_already_locked_is_refused_before_any_transaction() -> None:
    flow = new_flow()
    flow.handle(f.Pressed(f.Action.GYOSEI))
    flow.handle(f.Pressed(f.Action.CERTIFICATES))
    flow.handle(f.LanguageChosen("ja"))
    flow.handle(f.Pressed(f.Action.ACCEPT))
    effects = flow.handle(f.CardPlaced())
    effects = flow.handle(f.CardRead(ticket(effects, f.ReadCard), b"CERT", 0))
    assert flow.failure is f.Failure.PIN_LOCKED
    assert not any(isinstance(e, (f.StartTransaction, f.CancelTransaction)) for e in effects)


def test_after_authentication_the_kiosk_waits_for_the_card_to_be_removed() -> None:
    flow = new_flow()
    to_remove_card(flow)
    assert flow.step is f.Step.REMOVE_CARD
    flow.handle(f.Tick())
    assert flow.step is f.Step.REMOVE_CARD
    flow.handle(f.CardRemoved())
    assert flow.step is f.Step.MUNICIPALITY


def test_a_card_removed_during_the_pin_step_ends_the_visit() -> None:
    flow = new_flow()
    to_pin(flow)
    effects = flow.handle(f.CardRemoved())
    assert flow.failure is f.Failure.CARD_REMOVED
    assert f.CancelTransaction(0, "tx-1", "card_removed") in effects


def test_a_card_removed_mid_command_ends_the_visit() -> None:
    flow = new_flow()
    to_pin(flow)
    effects = flow.handle(f.PinEntered("1234"))
    flow.handle(f.CardFailed(ticket(effects, f.SignChallenge), removed=True))
    assert flow.failure is f.Failure.CARD_REMOVED


def test_an_unreadable_card_ends_the_visit() -> None:
    flow = new_flow()
    flow.handle(f.Pressed(f.Action.GYOSEI))
    flow.handle(f.Pressed(f.Action.CERTIFICATES))
    flow.handle(f.LanguageChosen("ja"))
    flow.handle(f.Pressed(f.Action.ACCEPT))
    effects = flow.handle(f.CardPlaced())
    flow.handle(f.CardFailed(ticket(effects, f.ReadCard)))
    assert flow.failure is f.Failure.CARD_UNREADABLE


@pytest.mark.parametrize(
    ("code", "failure"),
    [
        ("certificate_expired", f.Failure.CERTIFICATE_EXPIRED),
        ("certificate_revoked", f.Failure.CERTIFICATE_REVOKED),
        ("signature_invalid", f.Failure.CERTIFICATE_REJECTED),
        ("certificate_not_registered", f.Failure.CERTIFICATE_REJECTED),
        ("unreachable", f.Failure.SERVICE_UNREACHABLE),
        ("timeout", f.Failure.SERVICE_SLOW),
        ("municipality_unavailable", f.Failure.SERVICE_SLOW),  # the centre's municipality did not answer
        ("something_new", f.Failure.SERVICE_ERROR),
    ],
)
def test_the_service_refusing_the_card_has_its_own_failure(code: str, failure: f.Failure) -> None:
    flow = new_flow()
    to_pin(flow)
    effects = flow.handle(f.PinEntered("1234"))
    effects = flow.handle(f.ChallengeSigned(ticket(effects, f.SignChallenge), b"SIG"))
    effects = flow.handle(f.ServiceFailed(ticket(effects, f.Authenticate), code, "失敗", "failed"))
    assert flow.failure is failure
    assert any(isinstance(e, f.CancelTransaction) for e in effects)
    assert not flow.holds_personal_data


RULE_REFUSALS = (
    "under_15",
    "resident_moved_out",
    "resident_deceased",
    "change_pending",
    "same_day_move_in",
    "gaiji_in_record",
    "not_available_at_kiosk",
)


@pytest.mark.parametrize("code", RULE_REFUSALS)
def test_the_rules_refusing_the_card_holder_is_a_refusal_reported_by_its_code_not_a_service_error(code: str) -> None:
    flow = new_flow()
    to_pin(flow)
    effects = flow.handle(f.PinEntered("1234"))
    effects = flow.handle(f.ChallengeSigned(ticket(effects, f.SignChallenge), b"SIG"))
    effects = flow.handle(f.ServiceFailed(ticket(effects, f.Authenticate), code, "不可", "refused", refused=True))
    assert flow.step is f.Step.FAILED
    assert flow.failure is f.Failure.HOLDER_REFUSED and flow.refusal_code == code
    (ended,) = [e for e in effects if isinstance(e, f.VisitEnded)]
    assert ended.outcome == code
    assert not flow.holds_personal_data


@pytest.mark.parametrize("code", ["seal_cancelled", "honseki_registration_pending", "change_pending"])
def test_the_rules_refusing_an_order_report_the_rules_code(code: str) -> None:
    flow = new_flow()
    to_confirm(flow)
    effects = flow.handle(f.Pressed(f.Action.CONFIRM))
    effects = flow.handle(f.OrderRefused(ticket(effects, f.PlaceOrder), code, "不可", "refused"))
    assert flow.failure is f.Failure.DOCUMENT_REFUSED and flow.refusal_code == code
    assert [e.outcome for e in effects if isinstance(e, f.VisitEnded)] == [code]


def test_a_refusal_is_forgotten_with_the_visit() -> None:
    flow = new_flow()
    to_confirm(flow)
    effects = flow.handle(f.Pressed(f.Action.CONFIRM))
    flow.handle(f.OrderRefused(ticket(effects, f.PlaceOrder), "seal_cancelled", "不可", "refused"))
    flow.handle(f.Pressed(f.Action.ACKNOWLEDGE))
    assert flow.refusal_code is None and flow.failure is None


def test_an_unreachable_service_at_the_start_of_a_transaction_fails_without_a_cancel() -> None:
    flow = new_flow()
    flow.handle(f.Pressed(f.Action.GYOSEI))
    flow.handle(f.Pressed(f.Action.CERTIFICATES))
    flow.handle(f.LanguageChosen("ja"))
    flow.handle(f.Pressed(f.Action.ACCEPT))
    effects = flow.handle(f.CardPlaced())
    effects = flow.handle(f.CardRead(ticket(effects, f.ReadCard), b"CERT", 3))
    effects = flow.handle(f.ServiceFailed(ticket(effects, f.StartTransaction), "unreachable"))
    assert flow.failure is f.Failure.SERVICE_UNREACHABLE
    assert not any(isinstance(e, f.CancelTransaction) for e in effects)


def test_a_closed_municipality_cannot_be_chosen() -> None:
    flow = new_flow()
    to_remove_card(flow)
    flow.handle(f.CardRemoved())
    effects = flow.handle(f.MunicipalityChosen("08220", "honsekichi"))
    assert flow.failure is f.Failure.MUNICIPALITY_CLOSED
    assert any(isinstance(e, f.CancelTransaction) for e in effects)


def test_when_every_municipality_is_closed_the_visit_ends_after_authentication() -> None:
    closed = Menu((Municipality("08217", "取手市", MunicipalityRole.JUSHOCHI, False, "stopped", ()),))
    flow = new_flow()
    to_remove_card(flow, closed)
    flow.handle(f.CardRemoved())
    assert flow.failure is f.Failure.MUNICIPALITY_CLOSED


def test_a_certificate_outside_its_hours_cannot_be_chosen() -> None:
    flow = new_flow()
    to_remove_card(flow)
    flow.handle(f.CardRemoved())
    flow.handle(f.MunicipalityChosen("08217", "jushochi"))
    flow.handle(f.CertificateChosen("koseki_zenbu"))
    assert flow.step is f.Step.CERTIFICATE


def test_juminhyo_persons_and_options_make_the_order() -> None:
    flow = new_flow()
    to_remove_card(flow)
    flow.handle(f.CardRemoved())
    flow.handle(f.MunicipalityChosen("08217", "jushochi"))
    flow.handle(f.CertificateChosen("juminhyo"))
    assert flow.step is f.Step.PERSONS and flow.selection.person_ids == ["p1"]
    flow.handle(f.PersonToggled("p2"))
    flow.handle(f.PersonToggled("p9"))  # not on offer: ignored
    flow.handle(f.OptionToggled("setainushi"))
    flow.handle(f.OptionToggled("my_number"))  # not on offer: ignored
    flow.handle(f.Pressed(f.Action.NEXT))
    flow.handle(f.CopiesChosen(2))
    flow.handle(f.CopiesChosen(6))  # above max_copies: ignored
    flow.handle(f.Pressed(f.Action.NEXT))
    assert flow.step is f.Step.CONFIRM and flow.fee_yen == 400
    order = flow.build_order()
    assert order.person_ids == ("p1", "p2") and order.options == {"setainushi"} and order.copies == 2
    assert not order.whole_household


def test_whole_household_replaces_the_chosen_persons() -> None:
    flow = new_flow()
    to_remove_card(flow)
    flow.handle(f.CardRemoved())
    flow.handle(f.MunicipalityChosen("08217", "jushochi"))
    flow.handle(f.CertificateChosen("juminhyo"))
    flow.handle(f.Pressed(f.Action.WHOLE_HOUSEHOLD))
    order = flow.build_order()
    assert order.whole_household and order.person_ids == ()


def test_the_whole_household_box_ticks_its_members_and_a_person_unticked_after_it_leaves_the_others() -> None:
    flow = new_flow()
    to_remove_card(flow)
    flow.handle(f.CardRemoved())
    flow.handle(f.MunicipalityChosen("08217", "jushochi"))
    flow.handle(f.CertificateChosen("juminhyo"))
    assert flow.selection.offer is not None
    everyone = [p.person_id for p in flow.selection.offer.persons]
    assert len(everyone) > 1
    flow.handle(f.Pressed(f.Action.WHOLE_HOUSEHOLD))
    assert flow.selection.whole_household and flow.selection.person_ids == everyone
    flow.handle(f.PersonToggled(everyone[-1]))
    assert not flow.selection.whole_household and flow.selection.person_ids == everyone[:-1]
    flow.handle(f.Pressed(f.Action.WHOLE_HOUSEHOLD))
    flow.handle(f.Pressed(f.Action.WHOLE_HOUSEHOLD))  # unticked again: back to the requester
    assert flow.selection.person_ids == ["p1"]


def test_no_person_chosen_cannot_go_on() -> None:
    flow = new_flow()
    to_remove_card(flow)
    flow.handle(f.CardRemoved())
    flow.handle(f.MunicipalityChosen("08217", "jushochi"))
    flow.handle(f.CertificateChosen("juminhyo"))
    flow.handle(f.PersonToggled("p1"))
    flow.handle(f.Pressed(f.Action.NEXT))
    assert flow.step is f.Step.PERSONS


def test_back_walks_the_selection_steps_in_reverse() -> None:
    flow = new_flow()
    to_confirm(flow)
    for expected in (f.Step.COPIES, f.Step.CERTIFICATE, f.Step.MUNICIPALITY):
        flow.handle(f.Pressed(f.Action.BACK))
        assert flow.step is expected


def test_a_certificate_about_the_requester_only_skips_the_persons_step() -> None:
    flow = new_flow()
    to_remove_card(flow)
    flow.handle(f.CardRemoved())
    flow.handle(f.MunicipalityChosen("08217", "jushochi"))
    flow.handle(f.CertificateChosen("inkan"))
    assert flow.step is f.Step.COPIES


def test_a_refused_document_ends_the_visit_with_the_services_reason() -> None:
    flow = new_flow()
    to_confirm(flow)
    effects = flow.handle(f.Pressed(f.Action.CONFIRM))
    flow.handle(f.OrderRefused(ticket(effects, f.PlaceOrder), "seal_cancelled", "廃止済み", "cancelled seal"))
    assert flow.failure is f.Failure.DOCUMENT_REFUSED
    assert flow.failure_message == ("廃止済み", "cancelled seal")


def test_confirming_without_paper_fails_before_any_money_is_taken() -> None:
    flow = new_flow()
    to_confirm(flow)
    flow.handle(f.PaperChanged(0))
    effects = flow.handle(f.Pressed(f.Action.CONFIRM))
    assert flow.failure is f.Failure.PRINTER_OUT_OF_PAPER
    assert not any(isinstance(e, f.ReturnCash) for e in effects)


def test_payment_accepts_only_real_denominations_and_computes_the_change() -> None:
    flow = new_flow()
    to_payment(flow, fee=300)
    flow.handle(f.CashInserted(5))
    flow.handle(f.CashInserted(100))
    assert (flow.step, flow.paid_yen) == (f.Step.PAYMENT, 100)
    effects = flow.handle(f.CashInserted(1000))
    assert flow.step is f.Step.SETTLING
    effects = paid_to_printing(flow, effects)
    printing = ticket(effects, f.PrintDocuments)
    flow.handle(f.PrintProgressed(printing, 1, 1))
    effects = flow.handle(f.Printed(printing))
    assert flow.step is f.Step.TAKE_ITEMS and flow.receipt == f.Receipt("inkan", 1, 300, 1100, 800)
    assert not flow.holds_personal_data  # printed: nothing of the person is kept
    flow.handle(f.Tick())
    assert flow.step is f.Step.TAKE_ITEMS and flow.seconds_left() is None  # stays until acknowledged
    assert f.CollectCash(0, 300, 800) in effects
    assert f.ReportPrinted(0, "tx-1") in effects
    assert f.VisitEnded(0, "issued", "tx-1", 300, 1100, 800) in effects
    flow.handle(f.Pressed(f.Action.ACKNOWLEDGE))
    assert flow.step is f.Step.START and not flow.holds_personal_data


def test_cancelling_payment_returns_the_money_and_cancels_the_transaction() -> None:
    flow = new_flow()
    to_payment(flow)
    flow.handle(f.CashInserted(100))
    effects = flow.handle(f.Pressed(f.Action.CANCEL))
    assert flow.failure is f.Failure.PAYMENT_CANCELLED and flow.refunded_yen == 100
    assert effects[:2] == [f.ReturnCash(0, 100), f.CancelTransaction(0, "tx-1", "payment_cancelled")]


def test_running_out_of_paper_while_printing_returns_the_money() -> None:
    flow = new_flow()
    to_payment(flow)
    effects = flow.handle(f.CashInserted(500))
    effects = paid_to_printing(flow, effects)
    effects = flow.handle(f.PrintFailed(ticket(effects, f.PrintDocuments), out_of_paper=True))
    assert flow.failure is f.Failure.PRINTER_OUT_OF_PAPER
    assert f.ReturnCash(0, 500) in effects


def test_a_document_not_bound_to_the_transaction_is_never_printed_and_the_money_returned() -> None:
    flow = new_flow()
    to_payment(flow)
    effects = flow.handle(f.CashInserted(500))
    effects = paid_to_printing(flow, effects)
    effects = flow.handle(f.PrintFailed(ticket(effects, f.PrintDocuments), out_of_paper=False))
    assert flow.failure is f.Failure.DOCUMENT_MISMATCH
    assert f.ReturnCash(0, 500) in effects


def test_cancel_is_ignored_once_money_is_recorded_and_printing() -> None:
    flow = new_flow()
    to_payment(flow)
    effects = flow.handle(f.CashInserted(500))
    paid_to_printing(flow, effects)
    assert flow.handle(f.Pressed(f.Action.CANCEL)) == []
    assert flow.step is f.Step.PRINTING


@pytest.mark.parametrize("step_name", ["place_card", "pin", "municipality", "confirm", "payment"])
def test_an_idle_step_times_out_with_a_visible_countdown_and_cancels(step_name: str) -> None:
    clock = Clock()
    flow = new_flow(clock)
    walkers = {
        "place_card": lambda: [
            flow.handle(e)
            for e in (
                f.Pressed(f.Action.GYOSEI),
                f.Pressed(f.Action.CERTIFICATES),
                f.LanguageChosen("ja"),
                f.Pressed(f.Action.ACCEPT),
            )
        ],
        "pin": lambda: to_pin(flow),
        "municipality": lambda: (to_remove_card(flow), flow.handle(f.CardRemoved())),
        "confirm": lambda: to_confirm(flow),
        "payment": lambda: (to_payment(flow), flow.handle(f.CashInserted(100))),
    }
    walkers[step_name]()
    assert flow.step.value == step_name
    total = flow.seconds_left()
    assert total is not None and total > 0
    clock.now += total - 1
    assert flow.handle(f.Tick()) == [] and flow.seconds_left() == pytest.approx(1)
    clock.now += 1
    effects = flow.handle(f.Tick())
    assert flow.failure is f.Failure.TIMED_OUT
    if step_name != "place_card":
        assert f.CancelTransaction(0, "tx-1", "timed_out") in effects
    if step_name == "payment":
        assert f.ReturnCash(0, 100) in effects


def test_a_keypress_restarts_the_countdown() -> None:
    clock = Clock()
    flow = new_flow(clock)
    to_confirm(flow)
    clock.now += 50
    flow.handle(f.Pressed(f.Action.BACK))
    clock.now += 50
    flow.handle(f.Tick())
    assert flow.step is f.Step.COPIES


def test_the_failure_screen_returns_to_start_by_itself() -> None:
    clock = Clock()
    flow = new_flow(clock)
    to_pin(flow)
    flow.handle(f.Pressed(f.Action.CANCEL))
    assert flow.failure is f.Failure.CANCELLED
    clock.now += flow.timeouts.failed
    flow.handle(f.Tick())
    assert flow.step is f.Step.START and flow.failure is None


def test_a_late_result_after_a_cancel_is_ignored() -> None:
    flow = new_flow()
    to_pin(flow)
    effects = flow.handle(f.PinEntered("1234"))
    flow.handle(f.Pressed(f.Action.CANCEL))
    flow.handle(f.Pressed(f.Action.ACKNOWLEDGE))
    assert flow.handle(f.ChallengeSigned(ticket(effects, f.SignChallenge), b"SIG")) == []
    assert flow.step is f.Step.START and not flow.holds_personal_data


@pytest.mark.parametrize("walk", [to_pin, to_remove_card, to_confirm, to_payment], ids=lambda w: w.__name__)
def test_cancel_on_any_step_ends_the_visit_holding_no_personal_data(walk) -> None:  # type: ignore[no-untyped-def]
    flow = new_flow()
    walk(flow)
    effects = flow.handle(f.Pressed(f.Action.CANCEL))
    assert flow.step is f.Step.FAILED
    assert any(isinstance(e, f.VisitEnded) for e in effects)
    assert not flow.holds_personal_data
    flow.handle(f.Pressed(f.Action.ACKNOWLEDGE))
    assert flow.step is f.Step.START


def test_the_remove_card_step_is_skipped_when_the_card_is_already_gone() -> None:
    flow = new_flow()
    to_pin(flow)
    effects = flow.handle(f.PinEntered("1234"))
    effects = flow.handle(f.ChallengeSigned(ticket(effects, f.SignChallenge), b"SIG"))
    # The card left the reader between signing and the service's answer (not a card step).
    flow.step = f.Step.AUTHENTICATING
    flow.card_present = False
    flow.handle(f.Authenticated(ticket(effects, f.Authenticate), MENU))
    assert flow.step is f.Step.MUNICIPALITY


def test_an_order_with_another_number_of_copies_than_chosen_is_not_paid_for() -> None:
    flow = new_flow()
    to_confirm(flow, copies=2)
    effects = flow.handle(f.Pressed(f.Action.CONFIRM))
    effects = flow.handle(f.OrderPrepared(ticket(effects, f.PlaceOrder), OrderAccepted(400, 3)))
    assert flow.failure is f.Failure.DOCUMENT_MISMATCH
    assert f.CancelTransaction(0, "tx-1", "document_mismatch") in effects


def test_a_document_list_longer_than_the_order_is_never_printed() -> None:
    flow = new_flow()
    to_payment(flow)
    effects = flow.handle(f.CashInserted(500))
    effects = flow.handle(f.PaymentRecorded(ticket(effects, f.RecordPayment)))
    extra = DocumentRef("doc-2", "cd" * 32)
    effects = flow.handle(f.DocumentsFetched(ticket(effects, f.FetchDocuments), (REF, extra), ()))
    assert flow.failure is f.Failure.DOCUMENT_MISMATCH
    assert not any(isinstance(e, f.PrintDocuments) for e in effects)
    assert f.ReturnCash(0, 500) in effects


def test_a_fault_in_the_kiosk_itself_ends_the_visit_and_returns_the_money() -> None:
    flow = new_flow()
    to_payment(flow)
    effects = flow.handle(f.CashInserted(500))
    effects = flow.handle(f.EffectCrashed(ticket(effects, f.RecordPayment)))
    assert flow.failure is f.Failure.KIOSK_FAULT
    assert f.ReturnCash(0, 500) in effects and f.CancelTransaction(0, "tx-1", "kiosk_fault") in effects


def _end_visit_with_the_card_on_the_reader(ending: str, flow: f.KioskFlow, clock: Clock) -> None:
    if ending == "issued":
        to_payment(flow)
        flow.handle(f.CardPlaced())  # put back on the reader while paying
        effects = flow.handle(f.CashInserted(1000))
        effects = paid_to_printing(flow, effects)
        flow.handle(f.Printed(ticket(effects, f.PrintDocuments)))
        assert flow.step is f.Step.TAKE_ITEMS
        return
    to_pin(flow)
    if ending == "refused":
        effects = flow.handle(f.PinEntered("1234"))
        effects = flow.handle(f.ChallengeSigned(ticket(effects, f.SignChallenge), b"SIG"))
        flow.handle(f.ServiceFailed(ticket(effects, f.Authenticate), "under_15", refused=True))
    elif ending == "pin_locked":
        effects = flow.handle(f.PinEntered("1234"))
        flow.handle(f.PinLocked(ticket(effects, f.SignChallenge)))
    elif ending == "timed_out":
        clock.now += flow.timeouts.pin
        flow.handle(f.Tick())
    else:
        flow.handle(f.Pressed(f.Action.CANCEL))
    assert flow.step is f.Step.FAILED and flow.failure is not None


def _next_visit_to_place_card(flow: f.KioskFlow) -> list[f.Effect]:
    flow.handle(f.Pressed(f.Action.ACKNOWLEDGE))
    assert flow.step is f.Step.START
    for event in (f.Pressed(f.Action.GYOSEI), f.Pressed(f.Action.CERTIFICATES), f.LanguageChosen("ja")):
        flow.handle(event)
    return flow.handle(f.Pressed(f.Action.ACCEPT))


ENDINGS = ["issued", "refused", "pin_locked", "timed_out", "cancelled"]


@pytest.mark.parametrize("ending", ENDINGS)
def test_a_card_left_on_the_reader_is_never_read_for_the_next_visit(ending: str) -> None:
    clock = Clock()
    flow = new_flow(clock)
    _end_visit_with_the_card_on_the_reader(ending, flow, clock)
    assert flow.card_left_behind  # the end screen asks for it to be taken
    effects = _next_visit_to_place_card(flow)
    assert flow.card_left_behind  # still asking on the start screen and through the next visit's steps
    assert flow.step is f.Step.PLACE_CARD and effects == []
    assert flow.handle(f.Tick()) == [] and flow.step is f.Step.PLACE_CARD


@pytest.mark.parametrize("ending", ENDINGS)
def test_a_card_left_behind_is_read_once_placed_again(ending: str) -> None:
    clock = Clock()
    flow = new_flow(clock)
    _end_visit_with_the_card_on_the_reader(ending, flow, clock)
    flow.handle(f.CardRemoved())
    assert not flow.card_left_behind
    _next_visit_to_place_card(flow)
    effects = flow.handle(f.CardPlaced())
    assert flow.step is f.Step.READING_CARD and any(isinstance(e, f.ReadCard) for e in effects)


def test_a_card_left_behind_is_read_when_the_person_confirms_it_is_theirs() -> None:
    clock = Clock()
    flow = new_flow(clock)
    _end_visit_with_the_card_on_the_reader("cancelled", flow, clock)
    _next_visit_to_place_card(flow)
    effects = flow.handle(f.Pressed(f.Action.USE_CARD))
    assert flow.step is f.Step.READING_CARD and any(isinstance(e, f.ReadCard) for e in effects)
    assert not flow.card_left_behind


def test_a_card_placed_at_the_start_screen_is_read_for_that_visit() -> None:
    """Placed after the last visit ended: the person who placed it is the one at the kiosk."""
    flow = new_flow()
    flow.handle(f.CardPlaced())
    for event in (f.Pressed(f.Action.GYOSEI), f.Pressed(f.Action.CERTIFICATES), f.LanguageChosen("ja")):
        flow.handle(event)
    effects = flow.handle(f.Pressed(f.Action.ACCEPT))
    assert any(isinstance(e, f.ReadCard) for e in effects)


def test_an_empty_paper_tray_stops_a_visit_before_it_starts_and_a_refill_lets_it_start() -> None:
    flow = new_flow()
    flow.handle(f.PaperChanged(0))
    flow.handle(f.Pressed(f.Action.GYOSEI))
    flow.handle(f.Pressed(f.Action.CERTIFICATES))
    assert flow.step is f.Step.SERVICE_MENU and flow.out_of_paper
    flow.handle(f.PaperChanged(500))
    flow.handle(f.Pressed(f.Action.CERTIFICATES))
    assert flow.step is f.Step.LANGUAGE
