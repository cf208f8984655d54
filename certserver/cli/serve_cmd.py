"""`certserver serve`: run the kiosk API with uvicorn.

One worker runs the app built here; several workers each build their own from the
environment (uvicorn's factory import string), after this process has run the same
start-up checks once so that a configuration that does not fit is refused with one line.
Certificates are drawn and signed in render processes beside each worker (2 by default on a
machine with 2 or more cores, `--render-processes`), so rendering uses the other cores.
"""

from __future__ import annotations

import argparse
import os
import socket
from datetime import datetime

from certserver.cli import CliError, settings_from
from certserver.data_folder import ALLOW_OPEN_FLAG

RENDER_PROCESSES_VARIABLE = "CERTSERVER_RENDER_PROCESSES"  # Settings.render_processes from the environment


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("serve", parents=[common], help="run the kiosk API (HTTP)")
    parser.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="TCP port (default 8080)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default 1)")
    parser.add_argument("--render-processes", type=int, default=None, metavar="N",
                        help="processes that draw and sign the certificate PDFs, so that this work runs on "
                             "other CPU cores while the server answers the kiosks (default 2 on a machine "
                             "with 2 or more cores, else 0; 0 draws them inside the server process). "
                             "Each of the --workers has its own: W workers start W x N of them")
    parser.add_argument("--pretend-time", default=None, metavar="ISO",
                        help="DEMO/TRAINING ONLY: run the service's clock from this moment, e.g. "
                             "2026-11-26T10:00+09:00, so a demo outside service hours still issues")
    parser.add_argument(ALLOW_OPEN_FLAG, action="store_true",
                        help="TESTS ONLY: start even when other users may enter or read the data folder "
                             "(it holds residents' data and keys; the service refuses that by default)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from certserver.app import DeploymentCheckError, create_app
    from certserver.documents.render_processes import default_render_processes

    settings = settings_from(args)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port), ("workers", args.workers),
                                   ("render_processes", args.render_processes)) if v is not None}
    if args.render_processes is None and RENDER_PROCESSES_VARIABLE not in os.environ:
        overrides["render_processes"] = default_render_processes()
    settings = settings.model_copy(update=overrides)
    if args.pretend_time is not None:
        settings = settings.model_copy(update={"pretend_time": _pretend_time(args.pretend_time)})
    if args.allow_open_data_dir:
        settings = settings.model_copy(update={"allow_open_data_dir": True})
    if not 0 < settings.port < 65536:
        raise CliError(f"port must be 1-65535, not {settings.port}")
    try:
        app = create_app(settings)  # the start-up checks, once, here
    except DeploymentCheckError as exc:
        raise CliError(f"refusing to start: {exc}") from exc
    if settings.workers == 1:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", access_log=False)
        return 0
    # This process only supervises; each worker has its own database pool and render processes.
    app.state.engine.dispose()
    if app.state.render_processes is not None:
        app.state.render_processes.close()
    # Each worker process rebuilds the app from CERTSERVER_* (and re-runs the checks).
    os.environ.update({
        "CERTSERVER_DATA_DIR": str(settings.data_dir.resolve()),
        "CERTSERVER_DATABASE_URL": settings.database_url,
        "CERTSERVER_WORKERS": str(settings.workers),
        RENDER_PROCESSES_VARIABLE: str(settings.render_processes),
    })
    if settings.allow_open_data_dir:
        os.environ["CERTSERVER_ALLOW_OPEN_DATA_DIR"] = "1"
    if settings.pretend_time is not None:
        os.environ["CERTSERVER_PRETEND_TIME"] = settings.pretend_time.isoformat()
    config = uvicorn.Config("certserver.app:app_from_environment", factory=True, host=settings.host,
                            port=settings.port, workers=settings.workers, log_level="info", access_log=False)
    try:
        sock = _tcp_listener(settings.host, settings.port)
    except OSError as exc:
        raise CliError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}") from None
    Multiprocess(config, sockets=[sock]).run()
    return 0


def _pretend_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"--pretend-time must be an ISO date and time with its zone, not {text!r}") from None
    if moment.tzinfo is None:
        raise CliError("--pretend-time needs a zone, e.g. 2026-11-26T10:00+09:00")
    return moment


def _tcp_listener(host: str, port: int) -> socket.socket:
    """The workers' shared listening socket, created with IPPROTO_TCP.

    uvicorn's own (Config.bind_socket) leaves the protocol 0; accepted connections inherit
    it, and asyncio then never sets TCP_NODELAY on them, so every keep-alive response waits
    ~40 ms for the kiosk's delayed ACK (Nagle). Measured here: 3.4 instead of ~30
    transactions/s for one kiosk with two workers.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock
