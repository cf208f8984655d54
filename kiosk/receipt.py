"""The 利用明細 (receipt) the kiosk prints beside the certificates, as the stores' machines
do: what was issued, the fee, the money taken and the change, the transaction's number and
the time. Nothing about the person (the receipt is often left on the tray)."""

from __future__ import annotations

import datetime as dt
import io
import os
from dataclasses import dataclass
from pathlib import Path

from kiosk.i18n import has, text
from konbini_common.japan import JST

# IPAex Gothic (Debian's fonts-ipaexfont-gothic, which setup installs), embedded so that any
# viewer shows the receipt; KONBINI_FONT_DIR names another folder holding ipaexg.ttf. Without
# the file, reportlab's built-in CID font (not embedded: a viewer needs its Japanese pack).
RECEIPT_FONT = "KioskReceiptGothic"
_FONT_FILE = "ipaexg.ttf"
_FONT_DIRS = ("/usr/share/fonts/opentype/ipaexfont-gothic", "/usr/share/fonts/truetype/ipaexfont-gothic")


def _register_font() -> str:
    """The registered name of the receipt's font."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfbase.ttfonts import TTFont

    if RECEIPT_FONT in pdfmetrics.getRegisteredFontNames():
        return RECEIPT_FONT
    folders = [os.environ["KONBINI_FONT_DIR"]] if os.environ.get("KONBINI_FONT_DIR") else []
    for folder in [*folders, *_FONT_DIRS]:
        path = Path(folder) / _FONT_FILE
        if path.is_file():
            pdfmetrics.registerFont(TTFont(RECEIPT_FONT, str(path)))
            return RECEIPT_FONT
    if "HeiseiKakuGo-W5" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont("HeiseiKakuGo-W5"))
    return "HeiseiKakuGo-W5"


@dataclass(frozen=True)
class ReceiptLines:
    """What one receipt says."""

    kind: str
    copies: int
    fee_yen: int
    paid_yen: int
    change_yen: int
    transaction_id: str
    kiosk_id: str
    printed_at: dt.datetime  # aware

    def lines(self) -> list[str]:
        title = text("ja", f"kind.{self.kind}") if has("ja", f"kind.{self.kind}") else self.kind
        english = text("en", f"kind.{self.kind}") if has("en", f"kind.{self.kind}") else self.kind
        return [
            "利用明細　Receipt",
            f"{self.printed_at.astimezone(JST):%Y-%m-%d %H:%M} (JST)",
            f"端末 Kiosk: {self.kiosk_id}",
            "",
            f"{title}",
            f"  ({english})",
            f"通数 Copies: {self.copies}",
            f"手数料 Fee: {self.fee_yen:,}円",
            f"お預かり Paid: {self.paid_yen:,}円",
            f"おつり Change: {self.change_yen:,}円",
            "",
            f"取引番号 Transaction: {self.transaction_id[:16]}",
            "TEST ONLY — konbini-kiosk emulator",
        ]


def render_receipt(receipt: ReceiptLines) -> bytes:
    """The receipt as a one-page PDF (80 mm roll width)."""
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas

    font = _register_font()
    lines = receipt.lines()
    height = (20 + 6 * len(lines)) * mm
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=(80 * mm, height))
    page.setTitle("利用明細")
    y = height - 12 * mm
    for number, line in enumerate(lines):
        page.setFont(font, 12 if number == 0 else 9)
        page.drawString(6 * mm, y, line)
        y -= 6 * mm
    page.showPage()
    page.save()
    return out.getvalue()
