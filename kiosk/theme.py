"""The kiosk's own look: a bright screen as on the stores' multi-copy machines (white
ground, one strong blue for what to press, green to go on, red to stop), dark text for
contrast in a lit shop; and the visit's five phases for the step indicator."""

from __future__ import annotations

from textual.theme import Theme

from kiosk import flow as f

KONBINI_THEME = Theme(
    name="konbini",
    primary="#0057b8",
    secondary="#1d4f91",
    accent="#f08300",
    warning="#b35c00",
    error="#c8102e",
    success="#00843d",
    foreground="#1a1a1a",
    background="#f4f7fb",
    surface="#ffffff",
    panel="#e3ebf5",
    dark=False,
)

# The phases a resident sees in the step indicator, in the order the visit takes them (the
# card and PIN come first: the menu depends on who the card holder is).
PHASES: tuple[tuple[str, frozenset[f.Step]], ...] = (
    ("phase.card", frozenset({f.Step.PLACE_CARD, f.Step.READING_CARD, f.Step.PIN, f.Step.AUTHENTICATING})),
    ("phase.choose", frozenset({f.Step.REMOVE_CARD, f.Step.MUNICIPALITY, f.Step.CERTIFICATE, f.Step.PERSONS})),
    ("phase.confirm", frozenset({f.Step.COPIES, f.Step.CONFIRM, f.Step.ORDERING})),
    ("phase.pay", frozenset({f.Step.PAYMENT, f.Step.SETTLING})),
    ("phase.print", frozenset({f.Step.PRINTING, f.Step.TAKE_ITEMS})),
)


def phase_of(step: f.Step) -> int | None:
    """The 0-based phase of `step`, or None for the steps before and outside a visit."""
    return next((index for index, (_key, steps) in enumerate(PHASES) if step in steps), None)
