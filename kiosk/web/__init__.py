"""The kiosk in a browser (`kiosk serve`): textual-serve runs one `kiosk run` process per
browser tab and relays its screen over a websocket.

Each tab is a kiosk of its own: it takes the next free credential of the credentials file
(its kiosk identity on the issuing service, given back when the tab closes) and reads cards
from an in-process tray reader of its own (`--reader tray`), on which the operator panel
(F12) places the demo cards. The page loads nothing from another host: the template is the
project's own (textual-serve's pulls a font from a CDN), and the script, style sheet and
font come from textual-serve's package, served by this server.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Seat:
    """One kiosk identity a browser tab runs as."""

    kiosk_id: str
    secret: str = field(repr=False)


class Seats:
    """The kiosk identities of the credentials file, each held by at most one tab."""

    def __init__(self, credentials: list[tuple[str, str]]) -> None:
        self._free = [Seat(kiosk_id, secret) for kiosk_id, secret in credentials]
        self._total = len(self._free)
        self._guard = threading.Lock()

    def __len__(self) -> int:
        return self._total

    def take(self) -> Seat | None:
        """The first free seat, or None when every one is taken."""
        with self._guard:
            return self._free.pop(0) if self._free else None

    def give_back(self, seat: Seat) -> None:
        with self._guard:
            self._free.append(seat)


@dataclass(frozen=True)
class SessionPlan:
    """What every tab's `kiosk run` is started with (the seat adds its identity)."""

    server_url: str
    demo_cards: Path
    printer_dir: Path
    log_dir: Path | None = None
    verbose: bool = False

    def command(self, seat: Seat) -> str:
        """The shell command of one tab's kiosk; no secret is on it (they go by the
        environment, see KioskSession)."""
        args = [sys.executable, "-m", "kiosk.cli"]
        if self.verbose:
            args.append("-v")
        args += ["run", "--server", self.server_url, "--reader", "tray"]
        args += ["--demo-cards", str(self.demo_cards.absolute()), "--printer-dir", str(self.printer_dir.absolute())]
        if self.log_dir is not None:
            args += ["--log-file", str((self.log_dir / f"{seat.kiosk_id}.log").absolute())]
        return shlex.join(args)


class KioskSession(AppService):
    """One tab's kiosk process, with its seat's identity in its environment."""

    def __init__(self, command: str, seat: Seat, **kwargs: Any) -> None:
        super().__init__(command, **kwargs)
        self.seat = seat

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        environment = super()._build_environment(width, height)
        environment.pop("KIOSK_CREDENTIAL", None)
        environment["KIOSK_ID"] = self.seat.kiosk_id
        environment["KIOSK_SECRET"] = self.seat.secret
        return environment


class KioskWebServer(Server):
    """textual-serve's server with one seat per tab and a page that needs no network."""

    def __init__(self, plan: SessionPlan, seats: Seats, *, host: str, port: int) -> None:
        super().__init__("kiosk run", host=host, port=port, title="コンビニ交付 kiosk", templates_path=TEMPLATES)
        self.plan = plan
        self.seats = seats

    def initialize_logging(self) -> None:
        """The CLI has set up logging already (quiet unless -v)."""

    async def on_startup(self, app: web.Application) -> None:
        print(
            f"kiosk: the kiosk in a browser at {self.public_url}/ "
            f"({len(self.seats)} kiosk(s): one per tab); Ctrl+C stops it",
            flush=True,
        )

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One tab: a seat, its kiosk process, and the relay between the two until either
        side closes. Without a free seat the tab is told so and closed."""
        websocket = web.WebSocketResponse(heartbeat=15)
        await websocket.prepare(request)
        seat = self.seats.take()
        if seat is None:
            logger.warning("a browser tab was turned away: all %d kiosk(s) are in use", len(self.seats))
            await websocket.close(message=b"every kiosk is in use")
            return websocket
        width = _int(request.query.get("width"), 80)
        height = _int(request.query.get("height"), 24)
        session: KioskSession | None = None
        try:
            session = KioskSession(
                self.plan.command(seat),
                seat,
                write_bytes=websocket.send_bytes,
                write_str=websocket.send_str,
                close=websocket.close,
                download_manager=self.download_manager,
                debug=self.debug,
            )
            logger.info("kiosk %s: a browser tab opened", seat.kiosk_id)
            await session.start(width, height)
            await self._process_messages(websocket, session)
        except asyncio.CancelledError:
            await websocket.close()
        except Exception:
            logger.exception("kiosk %s: the browser session failed", seat.kiosk_id)
        finally:
            if session is not None:
                await session.stop()
            self.seats.give_back(seat)
            logger.info("kiosk %s: the browser tab closed", seat.kiosk_id)
        return websocket

    def serve(self, debug: bool = False) -> None:
        """Serve until SIGINT/SIGTERM. Raises OSError when the port cannot be bound."""
        self.debug = debug
        web.run_app(
            self._make_app(),
            host=self.host,
            port=self.port,
            handle_signals=True,
            print=lambda *_args: None,
        )


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default
