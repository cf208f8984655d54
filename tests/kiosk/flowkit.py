"""Canned menus and a fake clock for the pure state-machine tests of kiosk.flow.

These tests feed the flow the *result events* a card and the service would produce: an
in-test double of the service's answers, used ONLY for the pure flow unit tests. Every
integration test (screens, driver, CLI) talks to the real service over HTTP instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiosk import flow as f
from kiosk.models import (
    Document,
    DocumentRef,
    Menu,
    Municipality,
    MunicipalityRole,
    Offer,
    OptionChoice,
    OrderAccepted,
    PersonChoice,
)

JUMINHYO = Offer(
    kind="juminhyo",
    fee_yen=200,
    max_copies=5,
    persons=(PersonChoice("p1", "取手　太郎", "本人", True), PersonChoice("p2", "取手　花子", "妻", False)),
    options=(OptionChoice("setainushi", "世帯主・続柄", "Head of household"),),
    whole_household_allowed=True,
)
INKAN = Offer(kind="inkan", fee_yen=200, max_copies=5)
KOSEKI = Offer(kind="koseki_zenbu", fee_yen=350, max_copies=5, available=False, unavailable_reason="outside_hours")
TORIDE = Municipality("08217", "取手市", MunicipalityRole.JUSHOCHI, True, None, (JUMINHYO, INKAN))
HONSEKI_CLOSED = Municipality("08220", "つくば市", MunicipalityRole.HONSEKICHI, False, "stopped", (KOSEKI,))
MENU = Menu((TORIDE, HONSEKI_CLOSED))
PDF = b"%PDF-1.7 test document"
REF = DocumentRef("doc-1", "ab" * 32, pages=1)


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def new_flow(clock: Clock | None = None) -> f.KioskFlow:
    return f.KioskFlow(clock=clock or Clock())


def ticket(effects: list[f.Effect], kind: type[f.Effect]) -> int:
    matching = [e for e in effects if isinstance(e, kind)]
    assert matching, f"expected a {kind.__name__} among {effects}"
    return matching[0].ticket


def to_pin(flow: f.KioskFlow, *, tries_left: int = 3) -> None:
    """Walk from START to the PIN step with a card placed."""
    flow.handle(f.Pressed(f.Action.GYOSEI))
    flow.handle(f.Pressed(f.Action.CERTIFICATES))
    flow.handle(f.LanguageChosen("ja"))
    flow.handle(f.Pressed(f.Action.ACCEPT))
    effects = flow.handle(f.CardPlaced())
    effects = flow.handle(f.CardRead(ticket(effects, f.ReadCard), b"CERT", tries_left))
    flow.handle(f.TransactionStarted(ticket(effects, f.StartTransaction), "tx-1", b"CHALLENGE"))
    assert flow.step is f.Step.PIN


def to_remove_card(flow: f.KioskFlow, menu: Menu = MENU) -> None:
    to_pin(flow)
    effects = flow.handle(f.PinEntered("1234"))
    effects = flow.handle(f.ChallengeSigned(ticket(effects, f.SignChallenge), b"SIG"))
    flow.handle(f.Authenticated(ticket(effects, f.Authenticate), menu))


def to_confirm(flow: f.KioskFlow, kind: str = "inkan", copies: int = 1) -> None:
    to_remove_card(flow)
    flow.handle(f.CardRemoved())
    flow.handle(f.MunicipalityChosen("08217", "jushochi"))
    flow.handle(f.CertificateChosen(kind))
    if flow.step is f.Step.PERSONS:
        flow.handle(f.Pressed(f.Action.NEXT))
    flow.handle(f.CopiesChosen(copies))
    flow.handle(f.Pressed(f.Action.NEXT))
    assert flow.step is f.Step.CONFIRM


def to_payment(flow: f.KioskFlow, fee: int = 200) -> None:
    to_confirm(flow)
    effects = flow.handle(f.Pressed(f.Action.CONFIRM))
    flow.handle(f.OrderPrepared(ticket(effects, f.PlaceOrder), OrderAccepted(fee, 1)))
    assert flow.step is f.Step.PAYMENT


def paid_to_printing(flow: f.KioskFlow, effects: list[f.Effect]) -> list[f.Effect]:
    """From a RecordPayment effect to the PrintDocuments effect."""
    effects = flow.handle(f.PaymentRecorded(ticket(effects, f.RecordPayment)))
    assert flow.step is f.Step.SETTLING
    effects = flow.handle(f.DocumentsFetched(ticket(effects, f.FetchDocuments), (REF,), (Document(REF, "tx-1", PDF),)))
    assert flow.step is f.Step.PRINTING
    return effects
