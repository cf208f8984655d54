"""The municipality server the LGWAN contract suite holds to docs/lgwan.md (conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Target:
    url: str
    client: httpx.Client
    card_serial: str
    municipality: str
    open_at: str
