"""A kiosk vendor's tests against the konbini-kiosk harness (docs/harness.md shows this file).

The vendor's own PC/SC code reads the user-authentication certificate's first bytes; the
virtual card is told to misbehave and the code must say so. Then one visit against the
issuing service, and the same card again once the service has revoked it.
"""

from __future__ import annotations

import pytest
from smartcard.System import readers

from cardreader.virtualcard import ForcedStatus, SlowAnswer

SELECT_JPKI_AP = [0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01]
SELECT_AUTH_CERTIFICATE = [0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x0A]  # EF 000A
READ_FIRST_BYTES = [0x00, 0xB0, 0x00, 0x00, 0x07]


class CardReadError(Exception):
    pass


def read_certificate_start(reader_name: str) -> bytes:
    """The vendor's PC/SC code under test: the certificate's first 7 bytes, or CardReadError."""
    reader = next(r for r in readers() if str(r) == reader_name)
    connection = reader.createConnection()
    connection.connect()
    try:
        for command in (SELECT_JPKI_AP, SELECT_AUTH_CERTIFICATE, READ_FIRST_BYTES):
            data, sw1, sw2 = connection.transmit(command)
            if (sw1, sw2) != (0x90, 0x00):
                raise CardReadError(f"the card answered {sw1:02X}{sw2:02X}")
        return bytes(data)
    finally:
        connection.disconnect()


def test_our_reader_code_reports_a_memory_failure(virtual_card) -> None:  # type: ignore[no-untyped-def]
    card = virtual_card("toride-0001", transport="pcsc")  # skipped, saying why, without pcscd
    card.faults.add(ForcedStatus(0x6581, "read-binary"))  # 65 81: memory failure
    with pytest.raises(CardReadError, match="6581"):
        read_certificate_start(card.reader_name)
    assert [hit.fault for hit in card.faults.hits] == ["sw=6581:read-binary"]


def test_our_reader_code_waits_for_a_slow_card(virtual_card) -> None:  # type: ignore[no-untyped-def]
    card = virtual_card("toride-0001", transport="pcsc")
    card.faults.add(SlowAnswer(0.05, up_to=0.2))  # every answer 50-200 ms late
    assert read_certificate_start(card.reader_name)[0] == 0x30  # a DER SEQUENCE


def test_a_visit_issues_and_a_revoked_card_is_refused(konbini_service, virtual_card, kiosk_driver) -> None:  # type: ignore[no-untyped-def]
    card = virtual_card("toride-0001")
    kiosk = kiosk_driver(card)
    visit = kiosk.visit("juminhyo", persons="self", copies=1, pay=1000)
    assert visit.issued and len(visit.documents) == 1
    assert visit.change == 1000 - visit.fee
    konbini_service.revoke_card(card.serial, reason="lost")
    refused = kiosk.visit("juminhyo")
    assert (refused.status, refused.rule_code, refused.paid) == ("error", "certificate_revoked", 0)


def test_docs_harness_md_shows_exactly_this_example() -> None:
    """The documented example is this file, so it is known to run."""
    from pathlib import Path

    here = Path(__file__)
    doc = (here.parents[2] / "docs" / "harness.md").read_text(encoding="utf-8")
    shown = doc.split("```python\n", 1)[1].split("```", 1)[0]
    assert shown == here.read_text(encoding="utf-8").split("\n\n\ndef test_docs_harness_md", 1)[0] + "\n"
