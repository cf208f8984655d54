"""分散管理: what the service keeps as the 証明書交付センター (its kiosks, transactions,
challenges, documents, idempotent answers, audit log, certificate counters) and what it logs
names nobody once the visits are over. Personal data stays in the municipalities' registry.

Every demo resident's card is used at a kiosk for every kind of certificate it may ask for;
some visits are cancelled after ordering and some abandoned (the kiosk starts over, which
ends the old transaction whole). Then every row of the centre's tables, and every line the
service logged, is searched for every demo resident's name (with and without its space),
kana, address, previous address, 本籍, 通称, birth date and My Number, and for the names in
the 戸籍 records: zero hits.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from servicekit import Service
from sqlalchemy import select, text

from certserver.db.models.registry import KosekiMember, Resident
from kiosk.card import VirtualCardReader
from kiosk.client import ClientSettings, ServiceClient
from kiosk.driver import Driver, VisitScript
from kiosk.flow import KioskFlow
from kiosk.payment import CashAcceptor
from kiosk.printer import Printer
from kiosk.runner import EffectRunner

# The centre's part of the service: everything but the registry and the JPKI records.
CENTRE_TABLES = (
    "kiosks",
    "transactions",
    "challenges",
    "documents",
    "idempotency_records",
    "audit_entries",
    "audit_head",
)
KINDS = ("kisaijiko", "inkan", "shotoku_kazei", "koseki_zenbu", "koseki_kojin", "koseki_fuhyo")


def _personal_strings(rows: Callable[[Any], list[Any]]) -> set[str]:
    """Every demo resident's personal facts, and the 戸籍 names, from the registry that
    `rows` (a select -> its rows) reads."""
    found: set[str] = set()
    for (resident,) in rows(select(Resident)):
        for value in (
            resident.name,
            resident.name.replace("\u3000", ""),
            resident.name_kana,
            resident.address,
            resident.previous_address,
            resident.honseki,
            resident.tsusho,
            resident.my_number,
            resident.birth_date.isoformat(),
            resident.birth_date.strftime("%Y%m%d"),
        ):
            if value and len(value) >= 2:
                found.add(value)
    for (member,) in rows(select(KosekiMember)):
        found.update({member.name, member.name.replace("\u3000", "")})
    return found


def _centre_rows(service: Service) -> str:
    lines = []
    for table in CENTRE_TABLES:
        for row in service.query(text(f"SELECT * FROM {table}")):
            for value in row:
                if isinstance(value, bytes | bytearray | memoryview):
                    raw = bytes(value)
                    lines.append(raw.decode("utf-8", "ignore"))
                    lines.append(base64.b64encode(raw).decode())
                elif value is not None:
                    lines.append(str(value))
    return "\n".join(lines)


def _visits(service: Service, folder: Path) -> int:
    settings = ClientSettings(service.url, service.kiosk_id, service.kiosk_secret, 30.0)
    visits = 0
    with ServiceClient(settings) as client:
        for index, card in enumerate(service.cards.values()):
            kinds = ("juminhyo", KINDS[index % len(KINDS)], KINDS[(index + 3) % len(KINDS)])
            for kind in kinds:
                role = "honsekichi" if kind.startswith("koseki") and index % 2 else "jushochi"
                runner = EffectRunner(
                    VirtualCardReader(str(card.path)), client, CashAcceptor(), Printer(folder / "tray")
                )
                Driver(KioskFlow(), runner).visit(VisitScript(pin=card.pin, certificate=kind, municipality_role=role))
                visits += 1
    return visits


def _ordered_then(service: Service, end: str) -> None:
    """A transaction ordered through the API and then cancelled, or abandoned (the kiosk
    starts another: the first ends whole, "superseded")."""
    from cardreader.inprocess import VirtualCardTransport
    from cardreader.jpki import JpkiClient
    from cardreader.virtualcard import VirtualCard
    from kioskapi.models import CertificateKind, MunicipalityRole, Order

    card = service.card("toride-0001")
    settings = ClientSettings(service.url, service.kiosk_id, service.kiosk_secret, 30.0)
    with ServiceClient(settings) as client:
        started = client.start_transaction()
        with VirtualCardTransport(VirtualCard(card.path)) as transport:
            signed = JpkiClient(transport).authenticate(card.pin, started.challenge)
        client.authenticate(started.transaction_id, signed.certificate, signed.signature)
        client.order(
            started.transaction_id,
            Order(municipality_code="08217", role=MunicipalityRole.JUSHOCHI, kind=CertificateKind.JUMINHYO),
        )
        if end == "cancel":
            client.cancel(started.transaction_id)
        else:
            client.start_transaction()  # the kiosk starts over: the ordered one ends whole


@pytest.mark.slow
def test_the_centres_records_and_logs_name_nobody_after_the_visits(
    service: Service, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    visits = _visits(service, tmp_path)
    _ordered_then(service, "cancel")
    _ordered_then(service, "abandon")

    personal = _personal_strings(service.query)
    states = {row[0] for row in service.query(text("SELECT state FROM transactions"))}
    issued = service.query(text("SELECT count(*) FROM documents WHERE status = 'issued'"))[0][0]
    assert visits >= 30 and issued >= 10 and {"printed", "cancelled"} <= states
    assert len(personal) >= 40
    centre = _centre_rows(service)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert [p for p in sorted(personal) if p in centre] == []
    assert [p for p in sorted(personal) if p in logged] == []
