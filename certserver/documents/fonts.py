"""The IPAex fonts (IPA licence: embedding in PDFs allowed), registered once per process.

Registration parses a 4 MB TrueType file, so it happens once, under a lock, and every
renderer afterwards only asks reportlab for the font by name. `missing_characters` is the
coverage check the service runs before rendering: reportlab would silently draw an empty
box for a character the font lacks (外字), and a certificate must never misprint a name.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

from certserver.documents.errors import FontNotFoundError

MINCHO = "IPAexMincho"  # 明朝: body text, as on the real certificates
GOTHIC = "IPAexGothic"  # ゴシック: only for the background mask (never embedded)
# Titles and labels use the Mincho too: each embedded font costs a subset, its compression
# and its width tables on every document (~4 ms), a third of the rendering time.
LABEL = MINCHO

_FILES = {MINCHO: "ipaexm.ttf", GOTHIC: "ipaexg.ttf"}
# Debian's fonts-ipaexfont-{mincho,gothic}; KONBINI_FONT_DIR overrides for other systems.
_SEARCH_ROOTS = (
    Path("/usr/share/fonts/opentype"),
    Path("/usr/share/fonts/truetype"),
    Path("/usr/share/fonts"),
)
# Layout characters that are not drawn as glyphs.
_NOT_DRAWN = frozenset("\n\r\t")

_lock = threading.Lock()
_registered = False


def font_path(font_name: str) -> Path:
    """The file of `font_name` (MINCHO or GOTHIC). Raises FontNotFoundError if absent."""
    file_name = _FILES[font_name]
    override = os.environ.get("KONBINI_FONT_DIR")
    roots = [Path(override)] if override else list(_SEARCH_ROOTS)
    for root in roots:
        direct = root / file_name
        if direct.is_file():
            return direct
        if root.is_dir():
            for candidate in sorted(root.glob(f"*/{file_name}")):
                return candidate
    raise FontNotFoundError.of("font_missing", file_name=file_name)


def register_fonts() -> None:
    """Register the fonts documents embed with reportlab (idempotent, thread-safe).

    Raises FontNotFoundError when the font files are not installed.
    """
    global _registered
    if _registered:
        return
    with _lock:
        if _registered:
            return
        for name in sorted({MINCHO, LABEL}):  # the Gothic is only read by background.py
            pdfmetrics.registerFont(TTFont(name, str(font_path(name))))
        _registered = True


@lru_cache(maxsize=2)
def _coverage(font_name: str) -> frozenset[int]:
    register_fonts()
    font = pdfmetrics.getFont(font_name)
    return frozenset(font.face.charToGlyph)


def missing_characters(text: str | Iterable[str], font_name: str = MINCHO) -> set[str]:
    """Characters of `text` that `font_name` (MINCHO or LABEL) cannot draw (empty: printable).

    Raises FontNotFoundError when the fonts are not installed.
    """
    covered = _coverage(font_name)
    chars = set(text) if isinstance(text, str) else {c for part in text for c in part}
    return {c for c in chars if c not in _NOT_DRAWN and ord(c) not in covered}
