"""Properties of the state machine under any sequence of events (hypothesis): it never
raises, never keeps a PIN, never holds personal data at the start or after a failure, and
money is only held while a payment is open."""

from __future__ import annotations

from flowkit import MENU, PDF, REF, Clock
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk import flow as f
from kiosk.models import Document, OrderAccepted

PIN = "8305"

USER_EVENTS = st.sampled_from(
    [
        *[f.Pressed(action) for action in f.Action],
        f.LanguageChosen("ja"),
        f.LanguageChosen("en"),
        f.PinEntered(PIN),
        f.PinEntered("12"),
        f.MunicipalityChosen("08217", "jushochi"),
        f.MunicipalityChosen("08220", "honsekichi"),
        f.CertificateChosen("juminhyo"),
        f.CertificateChosen("inkan"),
        f.PersonToggled("p2"),
        f.OptionToggled("setainushi"),
        f.CopiesChosen(2),
        f.CashInserted(100),
        f.CashInserted(1000),
        f.CardPlaced(),
        f.CardRemoved(),
        f.PaperChanged(0),
        f.PaperChanged(500),
        f.Tick(),
    ]
)


def answers(effect: f.Effect) -> list[f.Event]:
    """What a card or the service may answer to `effect`: success first, then failures."""
    t = effect.ticket
    by_kind: dict[type[f.Effect], list[f.Event]] = {
        f.ReadCard: [f.CardRead(t, b"CERT", 3), f.CardRead(t, b"CERT", 0), f.CardFailed(t, removed=True)],
        f.StartTransaction: [f.TransactionStarted(t, "tx-1", b"CHALLENGE"), f.ServiceFailed(t, "unreachable")],
        f.SignChallenge: [f.ChallengeSigned(t, b"SIG"), f.PinRejected(t, 1), f.PinLocked(t)],
        f.Authenticate: [f.Authenticated(t, MENU), f.ServiceFailed(t, "certificate_revoked")],
        f.PlaceOrder: [f.OrderPrepared(t, OrderAccepted(200, 1)), f.OrderRefused(t, "seal_cancelled", "廃止", "x")],
        f.RecordPayment: [f.PaymentRecorded(t), f.ServiceFailed(t, "timeout")],
        f.FetchDocuments: [f.DocumentsFetched(t, (REF,), (Document(REF, "tx-1", PDF),)), f.EffectCrashed(t)],
        f.PrintDocuments: [f.Printed(t), f.PrintProgressed(t, 1, 1), f.PrintFailed(t, out_of_paper=True)],
    }
    return by_kind[type(effect)]


FORWARD: dict[f.Step, f.Event] = {
    f.Step.START: f.Pressed(f.Action.GYOSEI),
    f.Step.SERVICE_MENU: f.Pressed(f.Action.CERTIFICATES),
    f.Step.LANGUAGE: f.LanguageChosen("en"),
    f.Step.TERMS: f.Pressed(f.Action.ACCEPT),
    f.Step.PLACE_CARD: f.CardPlaced(),
    f.Step.PIN: f.PinEntered(PIN),
    f.Step.REMOVE_CARD: f.CardRemoved(),
    f.Step.MUNICIPALITY: f.MunicipalityChosen("08217", "jushochi"),
    f.Step.CERTIFICATE: f.CertificateChosen("juminhyo"),
    f.Step.PERSONS: f.Pressed(f.Action.NEXT),
    f.Step.COPIES: f.Pressed(f.Action.NEXT),
    f.Step.CONFIRM: f.Pressed(f.Action.CONFIRM),
    f.Step.PAYMENT: f.CashInserted(1000),
    f.Step.TAKE_ITEMS: f.Pressed(f.Action.ACKNOWLEDGE),
    f.Step.FAILED: f.Pressed(f.Action.ACKNOWLEDGE),
}


STEPS = st.lists(
    st.tuples(
        st.integers(0, 19),
        USER_EVENTS,
        st.integers(0, 16),
        st.integers(0, 3),
        st.sampled_from([0.0] * 8 + [5.0, 100.0]),
    ),
    min_size=25,
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(STEPS)
def test_any_sequence_of_events_keeps_the_invariants(steps: list[tuple[int, f.Event, int, int, float]]) -> None:
    walk(steps, set())


def test_the_random_walks_reach_every_step() -> None:
    """The walks above must go everywhere, or their invariants say little about later steps
    (checked on a derandomized run, so the answer does not change from run to run)."""
    reached: set[f.Step] = set()

    @settings(max_examples=300, deadline=None, derandomize=True, database=None)
    @given(STEPS)
    def explore(steps: list[tuple[int, f.Event, int, int, float]]) -> None:
        walk(steps, reached)

    explore()
    assert set(f.Step) - reached == set()


def walk(steps: list[tuple[int, f.Event, int, int, float]], reached: set[f.Step]) -> None:
    """Mostly the person goes on and the devices answer; sometimes anything else happens:
    a random tap, a failure, a stale answer, a long wait. Checks the invariants after each."""
    clock = Clock()
    flow = f.KioskFlow(clock=clock)
    pending: list[f.Effect] = []
    for mode, user_event, choice, which, wait in steps:
        clock.now += wait
        if mode <= 16 and flow.step in FORWARD:
            event = FORWARD[flow.step]
        elif mode <= 16 and pending:
            event = answers(pending[-1])[0]  # the newest effect succeeds
        elif mode == 17 and pending:
            effect = pending[-1 - min(which, len(pending) - 1)]  # a failure, or a stale answer
            options = answers(effect)
            event = options[choice % len(options)]
        elif mode == 18:
            event = f.Tick()
        else:
            event = user_event
        effects = flow.handle(event)
        pending += [e for e in effects if e.ticket]
        reached.add(flow.step)
        state = {name: value for name, value in vars(flow).items() if name != "_clock"}  # floats hold digits
        assert PIN not in repr(state) and PIN not in repr(vars(flow.selection))
        for effect in effects:
            if not isinstance(effect, f.SignChallenge):
                assert PIN not in repr(effect)
        if flow.step in (f.Step.START, f.Step.FAILED, f.Step.TAKE_ITEMS):
            assert not flow.holds_personal_data, flow.step
        if flow.paid_yen:
            assert flow.step in (f.Step.PAYMENT, f.Step.SETTLING, f.Step.PRINTING), flow.step
        refunds = sum(e.amount_yen for e in effects if isinstance(e, f.ReturnCash))
        assert refunds in (0, flow.refunded_yen)
