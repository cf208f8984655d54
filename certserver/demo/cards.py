"""Cards of the demo people, and `cards/index.json` that lists them.

The index deliberately holds each card's demo PIN and signing password: it is test-harness
data for synthetic people, read by demo scripts and load generators to drive the kiosk
(never do this with a real card). Written with mode 0600 like the card files themselves.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from certserver.data_folder import make_private_folder
from certserver.db.models.registry import Resident
from certserver.demo.world import DemoCard
from certserver.pki.ca import CaBundle
from certserver.services.cards import issue_card
from konbini_common.durable import write_atomic

INDEX_NAME = "index.json"


@dataclass(frozen=True)
class IndexEntry:
    file: str
    resident_id: str
    name: str
    pin: str
    password: str
    expect: str


def issue_demo_cards(
    session: Session,
    ca: CaBundle,
    cards: Sequence[DemoCard],
    cards_dir: Path,
    now: datetime,
    progress: Callable[[str], None] = lambda _line: None,
    jpki: Session | None = None,
) -> list[IndexEntry]:
    """Issue each demo card into `cards_dir/<resident_id>.json` in the caller's transaction
    (the JPKI records in `jpki`'s when the stores are apart), then apply any later change of
    status (a card issued before its holder moved out).

    Raises certserver.services.cards.CardServiceError (e.g. a card file already exists)."""
    make_private_folder(cards_dir)
    entries = []
    for card in cards:
        path = cards_dir / f"{card.resident_id}.json"
        issue_card(session, ca, card.resident_id, pin=card.pin, password=card.password, out=path, now=now, jpki=jpki)
        resident = session.get(Resident, card.resident_id)
        assert resident is not None  # issue_card found it
        if card.status_after_issue is not None:
            resident.status = card.status_after_issue
        entries.append(IndexEntry(path.name, card.resident_id, resident.name, card.pin, card.password, card.expect))
        progress(f"  card {path.name}: {card.expect}")
    session.flush()
    return entries


def write_index(cards_dir: Path, entries: Sequence[IndexEntry]) -> Path:
    """Write `cards_dir/index.json` atomically and durably, mode 0600. Raises OSError."""
    target = cards_dir / INDEX_NAME
    payload = json.dumps([entry.__dict__ for entry in entries], ensure_ascii=False, indent=2) + "\n"
    write_atomic(target, payload.encode("utf-8"))
    return target


def read_index(cards_dir: Path) -> list[IndexEntry]:
    """The entries of `cards_dir/index.json`. Raises OSError, ValueError (not an index)."""
    data = json.loads((cards_dir / INDEX_NAME).read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ValueError("the card index is not a list")
    return [IndexEntry(**item) for item in data]
