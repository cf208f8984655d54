"""The demo card index (`cards/index.json`, as `certserver init --demo` writes it): which
synthetic person each demo card file belongs to, its demo PIN, and what a visit with it is
expected to show. Used by the operator's card tray and by the load generator."""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

# The index's refusal codes in the words a trainer reads to a newcomer.
PLAIN_WORDS = {
    "honseki_registration_pending": "本籍地 registration (利用登録) still pending",
    "tax_no_declaration": "no tax declaration filed",
    "under_15": "under 15: a kiosk issues nothing",
    "resident_moved_out": "moved out: refused",
    "not_available_at_kiosk": "refused at kiosks: city office only",
    "seal_cancelled": "seal registration cancelled",
    "change_pending": "address change pending: refused",
    "gaiji_in_record": "name has a character the print font lacks (外字): refused",
    "same_day_move_in": "moved in the same day",
}


class DemoIndexError(Exception):
    """No readable index in the folder."""


@dataclass(frozen=True)
class DemoCardEntry:
    path: Path
    resident_id: str
    name: str = field(repr=False)
    pin: str = field(repr=False)
    expect: str = ""

    @property
    def purpose(self) -> str:
        """What a visit with this card shows, in plain words (no internal codes)."""
        return re.sub(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+", lambda m: PLAIN_WORDS.get(m.group(), m.group()), self.expect)

    @property
    def label(self) -> str:
        """What the tray shows: the file, the (demo) PIN and what the card is for, not the
        person (the operator panel shows no personal data)."""
        return f"{self.path.stem}  PIN {self.pin}  {self.purpose}"

    @property
    def expected_issued(self) -> bool:
        return self.expect.startswith("issued")


def read_index(folder: Path) -> list[DemoCardEntry]:
    """The entries of `folder`/index.json. Raises DemoIndexError."""
    try:
        entries = json.loads((folder / "index.json").read_text(encoding="utf-8"))
        return [
            DemoCardEntry(
                folder / str(e["file"]), str(e["resident_id"]), str(e["name"]), str(e["pin"]), str(e.get("expect", ""))
            )
            for e in entries
        ]
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise DemoIndexError(f"no readable demo card index in {folder} ({type(exc).__name__})") from None


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def card_table(entries: list[DemoCardEntry], indent: str = "    ") -> str:
    """The demo cards as aligned lines (full-width characters count two columns):
    file, PIN, holder, what the card is for."""
    rows = [(e.path.name, e.pin, e.name, e.purpose) for e in entries]
    header = ("card file", "PIN", "holder", "what a visit shows")
    widths = [max(_width(row[i]) for row in [header, *rows]) for i in range(3)]
    return "\n".join(
        indent + "  ".join(_pad(cell, widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3]
        for row in [header, *rows]
    )


if __name__ == "__main__":  # the demo's banner: python -m kiosk.democards FOLDER
    try:
        print(card_table(read_index(Path(sys.argv[1]))))
    except (DemoIndexError, IndexError) as exc:
        print(f"democards: {exc}", file=sys.stderr)
        sys.exit(2)
