"""Every text the kiosk shows, in Japanese (ja.json) and English (en.json).

Widgets never hold text of their own: they ask `text(language, key, **values)`. A test
checks that both catalogues have the same keys and the same {placeholders}.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

LANGUAGES = ("ja", "en")


class MissingTextError(KeyError):
    """A key that no catalogue has (a programming error caught by the tests)."""


@cache
def catalogue(language: str) -> dict[str, str]:
    """The catalogue of `language` ("ja" or "en"). Raises ValueError for another language."""
    if language not in LANGUAGES:
        raise ValueError(f"no catalogue for language {language!r}")
    raw = resources.files(__package__).joinpath(f"{language}.json").read_text(encoding="utf-8")
    data = json.loads(raw)
    return {str(k): str(v) for k, v in data.items()}


def text(language: str, key: str, **values: object) -> str:
    """The text for `key` in `language`, with {placeholders} filled. Raises MissingTextError."""
    try:
        template = catalogue(language)[key]
    except KeyError:
        raise MissingTextError(key) from None
    return template.format(**values) if values else template


def has(language: str, key: str) -> bool:
    return key in catalogue(language)


def localised(language: str, group: str, value: str) -> str:
    """A word the service sends in Japanese (a municipality's name, a relationship 続柄) in
    `language`: the catalogue's `group.value` with the Japanese beside it, or the value
    itself where the catalogue has none or the same (Japanese)."""
    key = f"{group}.{value}"
    words = text(language, key) if has(language, key) else value
    return value if words == value else f"{words} ({value})"
