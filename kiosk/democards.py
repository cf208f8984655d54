"""The demo card index (`cards/index.json`, as `certserver init --demo` writes it): which
synthetic person each demo card file belongs to, its demo PIN, and what a visit with it is
expected to show. Used by the operator's card tray and by the load generator."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


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
    def label(self) -> str:
        """What the tray shows: the file and what it is for, not the person."""
        return f"{self.path.stem} ({self.expect})"

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
