"""The kiosk in a browser (`kiosk serve`): Debian's headless Chromium, driven through
playwright, runs a whole visit (a 住民票, paid with a 1000-yen note, change given) in each of
two tabs against the real service on 127.0.0.1, and the test checks what the visit left
behind: a printed PDF the service verifies, the transaction printed and paid on the
service, each tab under its own kiosk id. The page must not ask any other host for
anything. On the way it takes screenshots of the main screens (into docs/screens/ with
KONBINI_UPDATE_SCREENS=1, see the `screens_dir` fixture).

The screen is a canvas, so the test follows each tab's kiosk by its log ("screen pin"),
and types like a person at a keyboard: each screen focuses its main button.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from servicekit import Service
from sqlalchemy import select

from certserver.db.models.transactions import KioskTransaction
from certserver.db.session import make_engine, make_session_factory, transaction
from certserver.services.kiosks import register_kiosk

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
STEP_SECONDS = 20.0

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip: playwright)")
if CHROMIUM is None:
    pytest.skip(
        "no chromium on this machine (Debian package chromium; scripts/setup.sh installs it)", allow_module_level=True
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _second_kiosk(service: Service) -> tuple[str, str]:
    engine = make_engine(service.settings.resolved_database_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            credential = register_kiosk(session, "TEST-KIOSK-02", "テスト店２", dt.datetime.now(dt.UTC))
            return credential.kiosk_id, credential.secret
    finally:
        engine.dispose()


@pytest.fixture
def kiosk_web(service: Service, tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """`kiosk serve` with two kiosk credentials; (URL, log folder, printer folder)."""
    second_id, second_secret = _second_kiosk(service)
    credentials = tmp_path / "kiosks.txt"
    credentials.write_text(f"{service.kiosk_id}:{service.kiosk_secret}\n{second_id}:{second_secret}\n")
    logs, printed = tmp_path / "logs", tmp_path / "printed"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    command = [sys.executable, "-m", "kiosk.cli", "-v", "serve", "--server", service.url]
    command += ["--credentials", str(credentials), "--demo-cards", str(service.data_dir / "cards")]
    command += ["--printer-dir", str(printed), "--port", str(port), "--log-dir", str(logs)]
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in first, first
        yield f"http://127.0.0.1:{port}/", logs, printed
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class SessionLog:
    """One tab's kiosk log, read as it grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen = 0

    def wait_screen(self, name: str) -> None:
        deadline = time.monotonic() + STEP_SECONDS
        needle = f" screen {name}\n"
        while time.monotonic() < deadline:
            text = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
            found = text.find(needle, self._seen)
            if found >= 0:
                self._seen = found + len(needle)
                time.sleep(0.3)  # the new screen is drawn in the browser a moment later
                return
            time.sleep(0.05)
        tail = self.path.read_text(encoding="utf-8")[-2000:] if self.path.exists() else "(no log)"
        raise AssertionError(f"the kiosk never showed {name!r}; its log ends:\n{tail}")


def _operator(page, code: str = "0000") -> None:  # type: ignore[no-untyped-def]
    """Open the operator panel, press its focused tray button (place or take), close it."""
    page.keyboard.press("F12")
    time.sleep(0.4)
    page.keyboard.type(code)
    page.keyboard.press("Enter")
    time.sleep(0.6)
    page.keyboard.press("Enter")
    time.sleep(0.8)
    page.keyboard.press("Escape")


def _visit(page, log: SessionLog, shots: Path) -> None:  # type: ignore[no-untyped-def]
    """One whole visit by keyboard: 住民票 of the card holder, 1 copy, a 1000-yen note."""

    def shot(name: str) -> None:
        page.screenshot(path=f"{shots}-{name}.png")

    log.wait_screen("start")
    page.focus(".xterm-helper-textarea")  # the terminal's keyboard input, as a tap on it gives
    shot("1-start")
    for screen in ("service_menu", "language", "terms"):
        page.keyboard.press("Enter")
        log.wait_screen(screen)
    shot("2-terms")
    page.keyboard.press("Enter")
    log.wait_screen("place_card")
    shot("3-place-card")
    _operator(page)  # places the first demo card (toride-0001) on this tab's tray
    log.wait_screen("pin")
    shot("4-pin")
    page.keyboard.type("1234")
    page.keyboard.press("Enter")
    log.wait_screen("remove_card")
    _operator(page)  # takes the card off
    log.wait_screen("municipality")
    shot("5-municipality")
    page.keyboard.press("Enter")
    log.wait_screen("certificate")
    shot("6-certificate")
    page.keyboard.press("Enter")  # the first offer: 住民票の写し
    log.wait_screen("persons")
    page.keyboard.press("Enter")
    log.wait_screen("copies")
    page.keyboard.press("Enter")
    log.wait_screen("confirm")
    shot("7-confirm")
    page.keyboard.press("Enter")
    log.wait_screen("payment")
    shot("8-payment")
    for _ in range(4):  # 10 -> 50 -> 100 -> 500 -> 1000 yen
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    log.wait_screen("take_items")
    shot("9-take-items")
    page.keyboard.press("Enter")
    log.wait_screen("start")


def test_a_whole_visit_in_two_browser_tabs_prints_a_verified_juminhyo_under_each_tabs_own_kiosk(
    service: Service, kiosk_web: tuple[str, Path, Path], screens_dir: Path
) -> None:
    url, logs, printed = kiosk_web
    foreign: list[str] = []
    began = time.monotonic()
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            for index, (width, height) in enumerate(((1280, 800), (800, 1280))):
                page = browser.new_page(viewport={"width": width, "height": height})
                page.on(
                    "request",
                    lambda request: (
                        foreign.append(request.url)
                        if urlparse(request.url).hostname not in ("127.0.0.1", None)
                        and not request.url.startswith("data:")
                        else None
                    ),
                )
                page.goto(url)
                kiosk_id = service.kiosk_id if index == 0 else "TEST-KIOSK-02"
                if index == 0:
                    first_screen = time.monotonic() - began
                _visit(page, SessionLog(logs / f"{kiosk_id}.log"), screens_dir / f"browser-{width}x{height}")
                # The first tab stays open while the second runs: each has its own seat.
        finally:
            browser.close()
    assert foreign == [], f"the page asked other hosts: {foreign}"
    pdfs = sorted(p for p in printed.glob("*.pdf") if not p.name.endswith("-receipt.pdf"))
    assert len(pdfs) == 2, [p.name for p in pdfs]
    assert len(list(printed.glob("*-receipt.pdf"))) == 2  # each visit's 利用明細 beside its certificate
    for pdf in pdfs:
        verified = subprocess.run(
            [str(Path(sys.executable).parent / "certserver"), "verify", "--data-dir", str(service.data_dir), str(pdf)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
    rows = service.query(
        select(
            KioskTransaction.kiosk_id, KioskTransaction.state, KioskTransaction.fee_total_yen, KioskTransaction.paid_yen
        )
        .where(KioskTransaction.state == "printed")
        .order_by(KioskTransaction.created_at)
    )
    assert [row[0] for row in rows] == [service.kiosk_id, "TEST-KIOSK-02"]
    for _kiosk, _state, fee, paid in rows:
        assert fee is not None and 0 < fee < 1000 and paid == fee  # a 1000-yen note: change was due
    for kiosk_id in (service.kiosk_id, "TEST-KIOSK-02"):
        assert "visit ended: issued" in (logs / f"{kiosk_id}.log").read_text(encoding="utf-8")
    print(f"first screen in the browser after {first_screen:.1f} s")
