"""Draws a certificate: the shared frame of every type around a layout's lines.

Every page: background (地紋), title, certificate number, page number "(n/N)". The body's
lines flow over as many pages as they need; 「以下余白」 marks where the content ends; the
last page carries the certifying sentence, the date of issue, the mayor's name with the
official seal, and the QR code. What never changes between documents (fonts, background
operators) is built once per process.
"""

from __future__ import annotations

import io
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from reportlab import rl_config
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfdoc, pdfmetrics
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from certserver.documents import background
from certserver.documents.content import CertificateContent
from certserver.documents.fonts import LABEL, MINCHO, register_fonts
from certserver.documents.layouts.base import BODY_WIDTH, Cell, Layout, Line
from certserver.documents.qr import qr_matrix
from certserver.documents.wareki import to_wareki

PAGE_WIDTH, PAGE_HEIGHT = A4
FRAME_LEFT = 17 * mm
FRAME_TOP = 262 * mm
FRAME_BOTTOM = 22 * mm
FOOTER_TOP = 98 * mm  # the last page's body ends here; below: certification, seal, QR
QR_SIZE = 28 * mm
SEAL_RED = (0.82, 0.1, 0.12)  # the mayor's seal, stamped on the certificate
IMPRESSION_BLACK = (0.0, 0.0, 0.0)  # the registered seal is a reproduction, printed in black
QR_FORM = "KonbiniQR"  # name of the Form XObject holding the QR modules (verification reads it)
BACKGROUND_FORM = "KonbiniBackground"
END_MARK = "以下余白"
MIN_FONT_SIZE = 5.0

# ASCII85 on top of Flate only makes streams 25% larger and costs ~4 ms per document in
# reportlab's pure-Python encoder; PDF readers need neither. Process-wide, like the fonts.
rl_config.useA85 = 0


class _FastFlate(pdfdoc.PDFStreamFilterZCompress):
    """Flate at level 1: 5% larger files for 15% less rendering time (the font subset
    dominates both). reportlab has no setting for the level, so its shared filter object is
    replaced, process-wide, once."""

    def encode(self, text: str | bytes) -> bytes:
        return zlib.compress(text.encode("utf8") if isinstance(text, str) else text, 1)


pdfdoc.PDFZCompress = _FastFlate()


@dataclass(frozen=True)
class Rendered:
    pdf: bytes
    pages: int


def _blocks(lines: Sequence[Line]) -> list[list[Line]]:
    """Runs of lines ending with a rule: one person, one section. Kept on one page if they fit."""
    blocks: list[list[Line]] = [[]]
    for line in lines:
        blocks[-1].append(line)
        if line.rule:
            blocks.append([])
    return [block for block in blocks if block]


def paginate(lines: Sequence[Line]) -> list[list[Line]]:
    """Split lines into pages, a block (person, section) moving whole to the next page when
    it fits there; the last page leaves room for the certification block and holds the
    last block with it."""
    full = (FRAME_TOP - FRAME_BOTTOM) / mm - 4
    last = (FRAME_TOP - FOOTER_TOP) / mm - 4
    pages: list[list[Line]] = [[]]
    used = 0.0
    for block in _blocks(lines):
        height = sum(line.height for line in block)
        if used + height > full and pages[-1] and height <= full:
            pages.append([])
            used = 0.0
        for line in block:  # a block taller than a page still breaks line by line
            if used + line.height > full and pages[-1]:
                pages.append([])
                used = 0.0
            pages[-1].append(line)
            used += line.height
    return _end_with_last_block(pages, last)


def _height(lines: Sequence[Line]) -> float:
    return sum(line.height for line in lines)


def _end_with_last_block(pages: list[list[Line]], last: float) -> list[list[Line]]:
    """Make the last page, which also carries the certification, fit `last` and hold the
    last block (person) with it: a real certificate never has a page holding only the
    certifying sentence, or only 「以下余白」 and the 省略事項 note, after its last person."""
    tail: list[Line] = []
    # Lines after the last block are carried along with that block, unless they alone are
    # more than a last page holds (no block ends near the end): then the page is cut instead.
    if len(pages) > 1 and not any(line.rule for line in pages[-1]) and _height(pages[-1]) <= last:
        tail = pages.pop()
    source = pages[-1]
    if not tail and _height(source) <= last:
        return pages
    start = _carry_start(source, _height(tail), last)
    pages[-1] = source[:start]
    pages.append(source[start:] + tail)
    return pages


def _carry_start(page: Sequence[Line], tail_height: float, last: float) -> int:
    """Where to cut `page` so that what follows (plus the tail) fits the last page: the
    start of its last complete block if that fits, else as many whole lines as fit."""
    ends = [index for index, line in enumerate(page) if line.rule]
    if len(ends) >= 2:
        start = ends[-2] + 1
        if _height(page[start:]) + tail_height <= last:
            return start
    start = 1  # never leave the page before empty
    while start < len(page) and _height(page[start:]) + tail_height > last:
        start += 1
    return start


def show_text(canvas: Canvas, font_name: str, size: float, x: float, y: float, text: str, align: str = "left") -> None:
    """Draw one line of text with `font_name` (a registered TrueType font) at `size` points.

    Emits the text operators directly, using the font's subset API (`splitString`,
    `getSubsetInternalName`, as reportlab documents for dynamic fonts): canvas.drawString
    builds a text object per call and formats every number in pure Python, which was a
    fifth of the rendering time.
    """
    if not text:
        return
    font = pdfmetrics.getFont(font_name)
    if align != "left":
        width = font.stringWidth(text, size)
        x -= width if align == "right" else width / 2
    doc = canvas._doc  # the document the subsets belong to (the API takes it explicitly)
    ops = [f"BT 1 0 0 1 {x:.2f} {y:.2f} Tm"]
    current = None
    for subset, chunk in font.splitString(text, doc):
        if subset != current:
            ops.append(f"{font.getSubsetInternalName(subset, doc)} {size:.2f} Tf")
            current = subset
        ops.append(f"<{chunk.hex()}> Tj")
    ops.append("ET")
    canvas.addLiteral(" ".join(ops))


def _fit_size(text: str, font: str, size: float, width_mm: float | None) -> float:
    if width_mm is None or not text:
        return size
    width = stringWidth(text, font, size)
    limit = width_mm * mm
    return size if width <= limit else max(MIN_FONT_SIZE, size * limit / width)


def _draw_cell(canvas: Canvas, cell: Cell, left: float, baseline: float) -> None:
    size = _fit_size(cell.text, cell.font, cell.size, cell.width)
    show_text(canvas, cell.font, size, left + cell.x * mm, baseline, cell.text, cell.align)


def seal_columns(chars: str) -> list[str]:
    """The columns of a seal's characters, right column first, each read top to bottom.

    Seals are engraved in near-square grids read column by column from the right, and the
    characters are spread so that no column is left with a lone character: つくば市長之印
    is つくば・市長・之印 (the later columns stretched to the full height), 市長之印 is 市長・之印,
    取手市長之印 is 取手市・長之印. Up to three characters stand in one column.
    """
    if len(chars) <= 3:
        return [chars] if chars else []
    rows = math.ceil(math.sqrt(len(chars)))
    count = math.ceil(len(chars) / rows)
    short, extra = divmod(len(chars), count)
    columns: list[str] = []
    start = 0
    for index in range(count):
        size = short + (1 if index < extra else 0)  # the right columns take the remainder
        columns.append(chars[start : start + size])
        start += size
    return columns


def _draw_seal_characters(
    canvas: Canvas, font: str, chars: str, right: float, top: float, inner: float, stretch: float
) -> None:
    """Draw `chars` in the square whose top-right corner is (right, top), side `inner`.

    Every character has the size of a full column's; a column with fewer characters spreads
    them over the whole height, as engravers do. `stretch` widens the glyph relative to the
    column width (round seals use the inner square more loosely)."""
    columns = seal_columns(chars)
    rows = max(len(column) for column in columns)
    cell_w = inner / len(columns)
    font_size = min(cell_w * stretch, inner / rows) * 0.92
    for column_index, column in enumerate(columns):
        cell_h = inner / len(column)
        x = right - (column_index + 0.5) * cell_w
        for row, char in enumerate(column):
            y = top - (row + 1) * cell_h + (cell_h - font_size * 0.88) / 2
            show_text(canvas, font, font_size, x, y, char, "center")


def draw_square_seal(canvas: Canvas, text: str, x: float, y: float, size: float) -> None:
    """The mayor's official seal (職印): red square, characters in columns read right to left."""
    canvas.saveState()
    canvas.setStrokeColorRGB(*SEAL_RED)
    canvas.setFillColorRGB(*SEAL_RED)
    canvas.setLineWidth(size * 0.05)
    canvas.rect(x, y, size, size, stroke=1, fill=0)
    margin = size * 0.07
    _draw_seal_characters(canvas, LABEL, text, x + size - margin, y + size - margin, size - 2 * margin, 1.0)
    canvas.restoreState()


def draw_round_seal(canvas: Canvas, text: str, cx: float, cy: float, diameter: float) -> None:
    """A registered personal seal (印影) generated from its characters: a ring with vertical
    text, in black, as the certificate reproduces the registered impression (印影の写し)."""
    chars = text.replace("\u3000", "").replace(" ", "") or "印"
    canvas.saveState()
    canvas.setStrokeColorRGB(*IMPRESSION_BLACK)
    canvas.setFillColorRGB(*IMPRESSION_BLACK)
    canvas.setLineWidth(diameter * 0.05)
    canvas.circle(cx, cy, diameter / 2, stroke=1, fill=0)
    inner = diameter * 0.62
    _draw_seal_characters(canvas, MINCHO, chars, cx + inner / 2, cy + inner / 2, inner, 1.1)
    canvas.restoreState()


def _define_forms(canvas: Canvas, qr_text: str) -> int:
    canvas.beginForm(
        BACKGROUND_FORM,
        lowerx=0,
        lowery=0,
        upperx=background.TILE_WIDTH,
        uppery=background.TILE_HEIGHT,
    )
    canvas.addLiteral(background.tile_operators())
    canvas.endForm()
    matrix = qr_matrix(qr_text)
    size = len(matrix)
    canvas.beginForm(QR_FORM, lowerx=0, lowery=0, upperx=size, uppery=size)
    ops = ["0 g"]
    for row_index, row in enumerate(matrix):
        y = size - row_index - 1
        column = 0
        while column < size:  # one rectangle per horizontal run of dark modules
            if row[column]:
                start = column
                while column < size and row[column]:
                    column += 1
                ops.append(f"{start} {y} {column - start} 1 re")
            else:
                column += 1
    ops.append("f")
    canvas.addLiteral("\n".join(ops))
    canvas.endForm()
    return size


@lru_cache(maxsize=1)
def _background_placements() -> str:
    """Operators placing the background tile across the page (the same on every page)."""
    columns = math.ceil(PAGE_WIDTH / background.TILE_WIDTH)
    rows = math.ceil(PAGE_HEIGHT / background.TILE_HEIGHT)
    ops = []
    for row in range(rows):
        offset = (background.TILE_WIDTH / 2) if row % 2 else 0
        for column in range(-1 if offset else 0, columns):
            x, y = column * background.TILE_WIDTH + offset, row * background.TILE_HEIGHT
            ops.append(f"q 1 0 0 1 {x:.2f} {y:.2f} cm /FormXob.{BACKGROUND_FORM} Do Q")
    return "\n".join(ops)


def _draw_background(canvas: Canvas) -> None:
    canvas.saveState()
    canvas.doForm(BACKGROUND_FORM)  # registers the form in the page's resources
    canvas.restoreState()
    canvas.addLiteral(_background_placements())


def _draw_header(canvas: Canvas, content: CertificateContent, layout: Layout, page: int, pages: int) -> None:
    centre = PAGE_WIDTH / 2
    show_text(canvas, LABEL, 18, centre, 276 * mm, layout.title, "center")
    if layout.subtitle:
        show_text(canvas, LABEL, 10, centre, 269 * mm, layout.subtitle, "center")
    number = f"証明書番号　{content.certificate_number}"
    show_text(canvas, LABEL, 8.5, FRAME_LEFT + BODY_WIDTH * mm, 287 * mm, number, "right")
    issuer = f"{content.issuer.prefecture}{content.issuer.name}"
    show_text(canvas, LABEL, 8.5, FRAME_LEFT, 287 * mm, issuer)
    show_text(canvas, MINCHO, 9, centre, 10 * mm, f"（{page}／{pages}）", "center")


def _draw_body(canvas: Canvas, lines: Sequence[Line], bottom: float) -> None:
    canvas.setLineWidth(0.8)
    canvas.rect(FRAME_LEFT, bottom, BODY_WIDTH * mm, FRAME_TOP - bottom, stroke=1, fill=0)
    canvas.setLineWidth(0.3)
    y = FRAME_TOP - 2 * mm
    for line in lines:
        baseline = y - line.height * mm + 1.8 * mm
        for cell in line.cells:
            _draw_cell(canvas, cell, FRAME_LEFT, baseline)
        if line.seal_text is not None:
            diameter = (line.height - 4) * mm
            draw_round_seal(
                canvas,
                line.seal_text,
                FRAME_LEFT + 60 * mm + diameter / 2,
                y - line.height * mm / 2,
                diameter,
            )
        if line.rule:
            mid = y - line.height * mm / 2
            canvas.line(FRAME_LEFT, mid, FRAME_LEFT + BODY_WIDTH * mm, mid)
        y -= line.height * mm


def _draw_continued(canvas: Canvas, mark: str) -> None:
    """The foot of a page the document goes on from (戸籍: 「次頁に続く」), just under the
    frame: the body may fill the frame to its bottom line."""
    right = FRAME_LEFT + BODY_WIDTH * mm
    show_text(canvas, MINCHO, 10, right, FRAME_BOTTOM - 5 * mm, mark, "right")


def _draw_certification(canvas: Canvas, content: CertificateContent, layout: Layout, modules: int) -> None:
    issuer = content.issuer
    left = FRAME_LEFT + 8 * mm
    show_text(canvas, MINCHO, 11, left, 86 * mm, layout.certification)
    show_text(canvas, MINCHO, 11, left, 77 * mm, to_wareki(content.issued_on))
    mayor = f"{issuer.prefecture}{issuer.mayor_title}　{issuer.mayor_name}"
    right = FRAME_LEFT + (BODY_WIDTH - 28) * mm
    show_text(canvas, MINCHO, 13, right, 62 * mm, mayor, "right")
    draw_square_seal(canvas, f"{issuer.mayor_title}之印", right + 3 * mm, 53 * mm, 22 * mm)
    # QR code, bottom left, with a caption saying what it is for.
    scale = QR_SIZE / modules
    canvas.saveState()
    canvas.translate(FRAME_LEFT, 18 * mm)
    canvas.scale(scale, scale)
    canvas.doForm(QR_FORM)
    canvas.restoreState()
    caption_x = FRAME_LEFT + QR_SIZE + 3 * mm
    show_text(canvas, LABEL, 7, caption_x, 40 * mm, "検証用コード（電子署名付き）")
    show_text(canvas, LABEL, 7, caption_x, 36 * mm, "Verification code (signed)")
    show_text(canvas, LABEL, 7, caption_x, 28 * mm, "コンビニ交付")


def render_pdf(content: CertificateContent, layout: Layout, qr_text: str, keywords: str = "") -> Rendered:
    """Draw the whole document. `qr_text` is the signed payload to print as a QR code;
    `keywords` goes to the document information (the signed metadata verification reads).

    Raises FontNotFoundError if the fonts are missing, QrPayloadError if the payload does
    not fit a QR code.
    """
    register_fonts()
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, initialFontName=MINCHO, initialFontSize=10.5, pageCompression=1)
    canvas.setTitle(f"{layout.title} {content.certificate_number}")
    canvas.setAuthor(f"{content.issuer.prefecture}{content.issuer.name}")
    canvas.setSubject(content.certificate_number)
    canvas.setKeywords(keywords)
    canvas.setCreator("konbini-kiosk certserver")
    modules = _define_forms(canvas, qr_text)
    pages = paginate([*layout.lines, Line((Cell(BODY_WIDTH - 4, END_MARK, align="right"),))])
    for number, lines in enumerate(pages, start=1):
        last = number == len(pages)
        _draw_background(canvas)
        _draw_header(canvas, content, layout, number, len(pages))
        _draw_body(canvas, lines, FOOTER_TOP if last else FRAME_BOTTOM)
        if layout.continued and not last:
            _draw_continued(canvas, layout.continued)
        if last:
            _draw_certification(canvas, content, layout, modules)
        canvas.showPage()
    canvas.save()
    return Rendered(buffer.getvalue(), len(pages))
