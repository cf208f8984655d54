"""The vocabulary layouts use: lines of positioned text, shared by every certificate type.

A layout module turns one content body into a `Layout`: a title, the body lines, and the
certifying sentence. The renderer (render.py) paginates the lines, so layouts never think
about pages, and draws the parts every certificate shares (header, background, seal, QR).
Positions are millimetres from the left edge of the body frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from certserver.documents.fonts import LABEL, MINCHO
from certserver.documents.wareki import to_wareki

LABEL_WIDTH = 38.0  # mm: label column
BODY_WIDTH = 176.0  # mm: inside the frame


@dataclass(frozen=True)
class Cell:
    x: float  # mm from the body's left edge
    text: str
    size: float = 10.5  # pt
    font: str = MINCHO
    width: float | None = None  # mm available; the text shrinks to fit
    align: str = "left"  # left | right | center (center/right: x is the centre/right edge)


@dataclass(frozen=True)
class Line:
    cells: tuple[Cell, ...]
    height: float = 6.5  # mm
    rule: bool = False  # a thin rule below the line (end of a person's block)
    seal_text: str | None = None  # draws a registered seal (印影) right of the cells


@dataclass(frozen=True)
class Layout:
    title: str
    lines: tuple[Line, ...]
    certification: str  # the sentence the mayor certifies with
    subtitle: str | None = None
    notes: tuple[str, ...] = field(default=())  # small print under the body, last page
    continued: str | None = None  # printed at the foot of every page but the last (次頁に続く)


def label_value(label: str, value: str, *, size: float = 10.5, x: float = 0.0, width: float | None = None) -> Line:
    """One `label  value` row; the value shrinks to fit the body width."""
    value_width = (width if width is not None else BODY_WIDTH - x) - LABEL_WIDTH - 2
    return Line(
        (
            Cell(x + 2, label, size=9, font=LABEL, width=LABEL_WIDTH - 4),
            Cell(x + LABEL_WIDTH, value, size=size, width=value_width),
        )
    )


def label_values(*pairs: tuple[str, str]) -> Line:
    """Several `label value` pairs side by side on one line (two or three columns)."""
    column = BODY_WIDTH / len(pairs)
    cells: list[Cell] = []
    for index, (label, value) in enumerate(pairs):
        x = index * column
        label_width = min(LABEL_WIDTH, column * 0.45)
        cells.append(Cell(x + 2, label, size=9, font=LABEL, width=label_width - 4))
        cells.append(Cell(x + label_width, value, width=column - label_width - 2))
    return Line(tuple(cells))


def heading(text: str, size: float = 10.5) -> Line:
    return Line((Cell(2, text, size=size, font=LABEL, width=BODY_WIDTH - 4),), height=7.5)


def text_line(text: str, x: float = 2, size: float = 10.5) -> Line:
    return Line((Cell(x, text, size=size, width=BODY_WIDTH - x - 2),))


def rule() -> Line:
    return Line((), height=2.0, rule=True)


def wareki(day: date | None) -> str:
    return to_wareki(day) if day is not None else ""


def yen(amount: int) -> str:
    return f"{amount:,}円"
