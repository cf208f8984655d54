"""Refusals of the ordering rules, and which codes the kiosk never sees.

The code is the stable part (API error code, tests); its messages are in the one catalogue
(certserver.refusals.MESSAGES). A few codes are confidential: they are audited, but the
kiosk only ever receives `NOT_AVAILABLE_AT_KIOSK` in their place.
"""

from __future__ import annotations

from certserver.refusals import MESSAGES
from certserver.services.rules.terms import RuleViolation

# What the kiosk receives instead of a confidential code. The person at the screen may be
# the one a DV/stalking support measure (支援措置) protects from, holding the protected
# person's card: the answer must not tell a support measure from any other refusal.
NOT_AVAILABLE_AT_KIOSK = ("not_available_at_kiosk", *MESSAGES["not_available_at_kiosk"])
CONFIDENTIAL_CODES = frozenset({"dv_support_measure"})


def kiosk_facing(code: str, message_ja: str, message_en: str) -> tuple[str, str, str]:
    """The (code, message_ja, message_en) a kiosk may receive for a refusal: the neutral
    answer in place of a confidential code, anything else unchanged."""
    if code in CONFIDENTIAL_CODES:
        return NOT_AVAILABLE_AT_KIOSK
    return code, message_ja, message_en


def violation(code: str) -> RuleViolation:
    """The RuleViolation for `code` with its messages. Raises KeyError for an unknown code."""
    return RuleViolation.of(code)
