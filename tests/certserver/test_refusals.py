"""Every refusal of the service is one kind of thing (a CodedRefusal) and every message a
person is told is written once, by code, in one catalogue (certserver.refusals)."""

from __future__ import annotations

import pickle
import string

import pytest

from certserver.api.errors import STATUS_BY_CODE, ApiError
from certserver.centre.transactions import TransactionError
from certserver.documents.errors import DocumentRefusedError, FontNotFoundError, SignerNotFoundError
from certserver.refusals import MESSAGES, CodedRefusal, messages
from certserver.services.authentication import ChallengeError
from certserver.services.ordering import RuleViolation

REFUSAL_CLASSES = (
    ApiError,
    TransactionError,
    ChallengeError,
    RuleViolation,
    DocumentRefusedError,
    FontNotFoundError,
    SignerNotFoundError,
)


@pytest.mark.parametrize("refusal_class", REFUSAL_CLASSES, ids=lambda c: c.__name__)
def test_every_refusal_carries_its_code_and_messages_across_processes(refusal_class: type[CodedRefusal]) -> None:
    """A refusal raised in a worker process (a render) reaches the API as itself."""
    refusal = refusal_class.of("transaction_not_found")
    assert isinstance(refusal, CodedRefusal)
    again = pickle.loads(pickle.dumps(refusal))
    assert type(again) is refusal_class
    assert (again.code, again.message_ja, again.message_en) == (
        "transaction_not_found",
        "取引が見つかりません。",
        "No such transaction.",
    )


def test_every_api_error_code_has_its_messages_in_the_catalogue() -> None:
    assert set(STATUS_BY_CODE) <= set(MESSAGES)


@pytest.mark.parametrize("code", sorted(MESSAGES))
def test_every_catalogue_entry_reads_in_both_languages(code: str) -> None:
    facts = {name: "X" for text in MESSAGES[code] for _, name, _, _ in string.Formatter().parse(text) if name}
    message_ja, message_en = messages(code, **facts)
    assert message_ja.strip() and message_en.strip()


def test_a_message_names_the_facts_of_the_moment() -> None:
    refusal = TransactionError.of("amount_mismatch", fee=300)
    assert (refusal.message_ja, refusal.message_en) == (
        "金額が一致しません（手数料 300 円）。",
        "The amount does not match the fee (300 yen).",
    )
    with pytest.raises(KeyError):
        TransactionError.of("amount_mismatch")  # the fee it names is missing
