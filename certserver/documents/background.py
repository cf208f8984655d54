"""Copy-deterrent background (地紋): 「複写」 stands out when the page is photocopied.

The tile is two dot screens of the same light tone: the background uses fine dots that a
copier's resolution drops, the word uses coarse dots that survive, so on a copy the word
appears. Dots are dashed strokes (one operator per run of dots), so the whole tile is a
few hundred operators. It is built once per process as PDF operators and drawn into a Form
XObject per document, then placed across every page.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont
from reportlab.lib.units import mm

from certserver.documents.fonts import GOTHIC, font_path

WORD = "複写"
TILE_WIDTH = 64 * mm
TILE_HEIGHT = 32 * mm
PITCH = 0.7 * mm  # distance between dot rows
GREY = 0.86  # tone of both screens
_MASK_COLUMNS = 96  # resolution of the word mask along a row

_lock = threading.Lock()
_cached: str | None = None


@dataclass(frozen=True)
class _Run:
    row: int
    start: int
    end: int  # exclusive, in mask columns


def _word_mask(rows: int) -> list[list[bool]]:
    """The word as a boolean mask of `rows` x _MASK_COLUMNS (True inside a stroke)."""
    scale = 4  # render larger, then sample, for smooth strokes
    width, height = _MASK_COLUMNS * scale, rows * scale
    image = Image.new("L", (width, height), 0)
    font = ImageFont.truetype(str(font_path(GOTHIC)), int(height * 0.8))
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((0, 0), WORD, font=font)
    draw.text(
        ((width - (right - left)) / 2 - left, (height - (bottom - top)) / 2 - top),
        WORD,
        fill=255,
        font=font,
    )
    grey = image.tobytes()  # mode "L": one byte per pixel, row by row
    return [
        [grey[(r * scale + scale // 2) * width + c * scale + scale // 2] > 127 for c in range(_MASK_COLUMNS)]
        for r in range(rows)
    ]


def _runs(mask: list[list[bool]]) -> list[_Run]:
    runs: list[_Run] = []
    for row, cells in enumerate(mask):
        start = None
        for column, inside in enumerate([*cells, False]):
            if inside and start is None:
                start = column
            elif not inside and start is not None:
                runs.append(_Run(row, start, column))
                start = None
    return runs


def _operators() -> str:
    rows = int(TILE_HEIGHT / PITCH)
    mask = _word_mask(rows)
    column_width = TILE_WIDTH / _MASK_COLUMNS
    ops = [f"q {GREY:.2f} G 1 J"]
    # Fine screen: the whole tile, thin strokes with short dashes (lost on a copy).
    ops.append(f"{0.12 * mm:.3f} w [{0.12 * mm:.3f} {0.38 * mm:.3f}] 0 d")
    for row in range(rows):
        y = TILE_HEIGHT - (row + 0.5) * PITCH
        ops.append(f"0 {y:.2f} m {TILE_WIDTH:.2f} {y:.2f} l")
    ops.append("S")
    # Coarse screen: the word, thicker and sparser dots (survive a copy), on top in white
    # gaps so the tone stays the same to the eye.
    ops.append(f"1 G {0.5 * mm:.3f} w [] 0 d")
    runs = _runs(mask)
    for run in runs:
        y = TILE_HEIGHT - (run.row + 0.5) * PITCH
        ops.append(f"{run.start * column_width:.2f} {y:.2f} m {run.end * column_width:.2f} {y:.2f} l")
    ops.append("S")
    ops.append(f"{GREY:.2f} G 0 J {0.3 * mm:.3f} w [{0.01 * mm:.3f} {1.0 * mm:.3f}] 0 d 1 J")
    for run in runs:
        y = TILE_HEIGHT - (run.row + 0.5) * PITCH
        ops.append(f"{run.start * column_width:.2f} {y:.2f} m {run.end * column_width:.2f} {y:.2f} l")
    ops.append("S Q")
    return "\n".join(ops)


def tile_operators() -> str:
    """PDF operators drawing one tile at the origin (cached per process).

    Raises FontNotFoundError when the Gothic font is not installed.
    """
    global _cached
    if _cached is None:
        with _lock:
            if _cached is None:
                _cached = _operators()
    return _cached
