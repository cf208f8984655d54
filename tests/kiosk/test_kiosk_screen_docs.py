"""The README's terminal screenshots are the app's own: the main screens, drawn by the kiosk
at 80x24 and 160x50, saved as SVG (under docs/screens/ with KONBINI_UPDATE_SCREENS=1; without the web font Rich's SVG
would fetch from a CDN: the viewer's monospace font draws them)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_kiosk_screens import kiosk_at

from kiosk.i18n import text

pytestmark = pytest.mark.anyio

MAIN = ("start", "pin", "certificate", "confirm", "payment", "take_items")


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("language", ["ja", "en"])
async def test_the_main_screens_are_saved_for_the_readme_from_the_app_itself(
    language: str, size: tuple[int, int], tmp_path: Path, screens_dir: Path
) -> None:
    for name in MAIN:
        app = kiosk_at(name, language, tmp_path / name)
        async with app.run_test(size=size) as pilot:
            app._sync()
            await pilot.pause()
            svg = app.export_screenshot(title=f"konbini-kiosk {size[0]}x{size[1]}")
        svg = re.sub(r"@font-face\s*\{[^}]*\}", "", svg)
        assert not re.search(r"url\(\"?https?:", svg)  # nothing to fetch
        # Rich's SVG puts each run of text in its own element: compare without them.
        shown = re.sub(r"<[^>]+>", "", svg).replace("&#160;", " ")
        title = text(language, f"{name}.title")
        assert title.replace(" ", "")[:6] in shown.replace(" ", ""), f"{name}: {title!r} is not drawn"
        (screens_dir / f"terminal-{size[0]}x{size[1]}-{language}-{name}.svg").write_text(svg, encoding="utf-8")
