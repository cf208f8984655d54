"""`certserver serve`: run the kiosk API with uvicorn.

One worker runs the app built here; several workers each build their own from the
environment (uvicorn's factory import string), after this process has run the same
start-up checks once so that a configuration that does not fit is refused with one line.
Certificates are drawn and signed in render processes beside each worker (2 by default on a
machine with 2 or more cores, `--render-processes`), so rendering uses the other cores.

The workers end with the supervising process however it ends: stopped, they are stopped by
it; killed (SIGKILL, out of memory), each worker notices and shuts down by itself (its render
processes with it), so that nothing keeps answering on the port and a restart can bind it.
Every process logs in the command's one format (time, level, logger), uvicorn's lines too.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from certserver.cli import LOG_FORMAT, CliError, settings_from
from certserver.cli.init_cmd import MUNICIPAL_SERVER
from certserver.data_folder import ALLOW_OPEN_FLAG

if TYPE_CHECKING:
    from fastapi import FastAPI

    from certserver.config import Settings

logger = logging.getLogger(__name__)

RENDER_PROCESSES_VARIABLE = "CERTSERVER_RENDER_PROCESSES"  # Settings.render_processes from the environment
# A worker whose supervisor is gone finishes the requests in flight (an order being rendered)
# within this, or is ended: an orphan must not hold the port for ever.
ORPHAN_SHUTDOWN_SECONDS = 30.0
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
SERVICES = ("all", "centre", "municipalities")
MUNICIPAL_START_SECONDS = 60.0  # the certificate server's render processes load fonts and keys


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("serve", parents=[common], help="run the kiosk API (HTTP)")
    parser.add_argument(
        "service",
        nargs="?",
        choices=SERVICES,
        default="all",
        help="all (default): the whole service; in a data folder laid out per role (`init --split`) "
        "the centre here and the municipalities' certificate server as a process of its own, over "
        "mutual TLS. centre: the centre alone (the certificate servers' addresses from "
        "CERTSERVER_LGWAN_ENDPOINTS). municipalities: the certificate server alone (HTTPS, mutual TLS)",
    )
    parser.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="TCP port (default 8080)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default 1)")
    parser.add_argument(
        "--render-processes",
        type=int,
        default=None,
        metavar="N",
        help="processes that draw and sign the certificate PDFs, so that this work runs on "
        "other CPU cores while the server answers the kiosks (default 2 on a machine "
        "with 2 or more cores, else 0; 0 draws them inside the server process). "
        "Each of the --workers has its own: W workers start W x N of them",
    )
    parser.add_argument(
        "--pretend-time",
        default=None,
        metavar="ISO",
        help="DEMO/TRAINING ONLY: run the service's clock from this moment, e.g. "
        "2026-11-26T10:00+09:00, so a demo outside service hours still issues; from "
        "the audit log's newest entry instead when that is later. The commands run "
        "on the same --data-dir (card revoke ...) use this clock too",
    )
    parser.add_argument(
        ALLOW_OPEN_FLAG,
        action="store_true",
        help="TESTS ONLY: start even when other users may enter or read the data folder "
        "(it holds residents' data and keys; the service refuses that by default)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from certserver.documents.render_processes import default_render_processes

    settings = settings_from(args)
    overrides = {
        k: v
        for k, v in (
            ("host", args.host),
            ("port", args.port),
            ("workers", args.workers),
            ("render_processes", args.render_processes),
        )
        if v is not None
    }
    if args.render_processes is None and RENDER_PROCESSES_VARIABLE not in os.environ:
        overrides["render_processes"] = default_render_processes()
    settings = settings.model_copy(update=overrides)
    if args.pretend_time is not None:
        settings = settings.model_copy(update={"pretend_time": _pretend_time(args.pretend_time)})
    if args.allow_open_data_dir:
        settings = settings.model_copy(update={"allow_open_data_dir": True})
    if not 0 < settings.port < 65536:
        raise CliError(f"port must be 1-65535, not {settings.port}")
    if args.service == "municipalities":
        return _serve_municipalities(settings)
    if args.service == "all" and settings.split_layout and not settings.lgwan_endpoints:
        with _municipal_server(settings, args) as endpoints:
            return _serve_centre(settings.model_copy(update={"lgwan_endpoints": endpoints}))
    if settings.split_layout and not settings.lgwan_endpoints:
        raise CliError(
            "the centre of a data folder laid out per role needs its certificate servers' addresses: "
            'CERTSERVER_LGWAN_ENDPOINTS=\'{"08217": "https://HOST:PORT", ...}\' (or run `certserver serve` for all)'
        )
    return _serve_centre(settings)


def _serve_centre(settings: Settings) -> int:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from certserver.app import DeploymentCheckError, create_app

    try:
        app = create_app(settings)  # the start-up checks, once, here
    except DeploymentCheckError as exc:
        raise CliError(f"refusing to start: {exc}") from exc
    _share_clock(app, settings)
    if settings.workers == 1:
        uvicorn.run(
            app, host=settings.host, port=settings.port, log_level="info", access_log=False, log_config=log_config()
        )
        return 0
    # This process only supervises; each worker has its own database pool and render processes.
    app.state.engine.dispose()
    if app.state.render_processes is not None:
        app.state.render_processes.close()
    # Each worker process rebuilds the app from CERTSERVER_* (and re-runs the checks).
    os.environ.update(
        {
            "CERTSERVER_DATA_DIR": str(settings.data_dir.resolve()),
            "CERTSERVER_DATABASE_URL": settings.database_url,
            "CERTSERVER_WORKERS": str(settings.workers),
            RENDER_PROCESSES_VARIABLE: str(settings.render_processes),
        }
    )
    if settings.allow_open_data_dir:
        os.environ["CERTSERVER_ALLOW_OPEN_DATA_DIR"] = "1"
    if settings.lgwan_endpoints:
        os.environ["CERTSERVER_LGWAN_ENDPOINTS"] = json.dumps(settings.lgwan_endpoints)
    if settings.pretend_time is not None:
        os.environ["CERTSERVER_PRETEND_TIME"] = settings.pretend_time.isoformat()
    config = uvicorn.Config(
        "certserver.cli.serve_cmd:worker_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level="info",
        access_log=False,
        log_config=log_config(),
    )
    try:
        sock = _tcp_listener(settings.host, settings.port)
    except OSError as exc:
        raise CliError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}") from None
    Multiprocess(config, sockets=[sock]).run()
    return 0


def _serve_municipalities(settings: Settings) -> int:
    """The municipalities' certificate server alone: HTTPS on the LGWAN link, answering only
    the centre's certificate."""
    import uvicorn

    from certserver.app import DeploymentCheckError, create_municipal_app
    from certserver.lgwan.tls import LgwanTlsError, server_files, uvicorn_ssl_options

    settings = settings.for_role("municipalities")
    if not settings.split_layout:
        raise CliError(f"{settings.data_dir} is not laid out per role: run `certserver init --split` for that")
    try:
        tls = uvicorn_ssl_options(server_files(settings.lgwan_dir, MUNICIPAL_SERVER))
        app = create_municipal_app(settings)
    except (DeploymentCheckError, LgwanTlsError) as exc:
        raise CliError(f"refusing to start the certificate server: {exc}") from exc
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=False,
        log_config=log_config(),
        **tls,
    )
    return 0


@contextlib.contextmanager
def _municipal_server(settings: Settings, args: argparse.Namespace) -> Iterator[dict[str, str]]:
    """The municipalities' certificate server as a child process on the next port, until the
    block ends (it also ends if this process is killed, and is started again if it dies
    meanwhile); yields the centre's endpoints (each municipality it serves -> its URL).
    Raises CliError when it does not come up."""
    port = settings.port + 1
    command = [sys.executable, "-m", "certserver", "serve", "municipalities"]
    command += ["--data-dir", str(settings.data_dir), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--render-processes", str(settings.render_processes)]
    if settings.allow_open_data_dir:
        command.append(ALLOW_OPEN_FLAG)
    server = _SupervisedServer(command)
    server.start()
    try:
        url = f"https://127.0.0.1:{port}"
        codes = _wait_for_municipal_server(settings, server, url)
        server.serving = True
        logger.info("the municipalities' certificate server answers on %s for %s", url, ", ".join(codes))
        yield dict.fromkeys(codes, url)
    finally:
        server.stop()


class _SupervisedServer:
    """A child process started, and once it served started again when it dies (at most
    RESTARTS_PER_MINUTE times a minute), by a thread of its own: the child's parent-death
    signal fires when the thread that started it ends, so that thread lives as long as it."""

    RESTARTS_PER_MINUTE = 5

    def __init__(self, command: list[str]) -> None:
        self.command = command
        self.child: subprocess.Popen[bytes] | None = None
        self.serving = False  # it answered once: from then on a death is restarted
        self.ended = threading.Event()  # the supervising thread gave up or was stopped
        self._stopping = threading.Event()
        self._spawned = threading.Event()
        self._thread = threading.Thread(target=self._run, name="municipal-server", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._spawned.wait()

    def _run(self) -> None:
        restarts: list[float] = []
        try:
            while not self._stopping.is_set():
                self.child = subprocess.Popen(self.command, preexec_fn=_end_with_parent)
                self._spawned.set()
                code = self.child.wait()
                if self._stopping.is_set() or not self.serving:
                    return
                restarts = [t for t in restarts if time.monotonic() - t < 60] + [time.monotonic()]
                if len(restarts) > self.RESTARTS_PER_MINUTE:
                    logger.error("the municipalities' certificate server keeps ending (exit %d): not restarted", code)
                    return
                logger.error("the municipalities' certificate server ended (exit %d): starting it again", code)
                time.sleep(1.0)
        finally:
            self._spawned.set()
            self.ended.set()

    def exit_code(self) -> int | None:
        """The child's exit code when it ended and will not be started again, else None."""
        if self.ended.is_set() and self.child is not None:
            return self.child.poll()
        return None

    def stop(self) -> None:
        self._stopping.set()
        child = self.child
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self._thread.join(timeout=10)


def _end_with_parent() -> None:
    """In the child before it runs: SIGTERM when the parent ends, however it ends."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


def _wait_for_municipal_server(settings: Settings, server: _SupervisedServer, url: str) -> list[str]:
    """The codes the server answers for, once its health answers the centre's certificate.
    Raises CliError when it ends or does not answer in time."""
    import httpx

    from certserver.lgwan.tls import LgwanTlsError, centre_client_files, client_ssl_context

    try:
        tls = client_ssl_context(centre_client_files(settings.lgwan_dir))
    except LgwanTlsError as exc:
        raise CliError(f"refusing to start: the LGWAN link: {exc}") from exc
    deadline = time.monotonic() + MUNICIPAL_START_SECONDS
    with httpx.Client(verify=tls, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.ended.is_set():
                raise CliError(f"the municipalities' certificate server did not start (exit {server.exit_code()})")
            try:
                health = client.get(f"{url}/lgwan/v1/health")
            except httpx.TransportError:
                time.sleep(0.2)
                continue
            if health.status_code == 200:
                return [str(code) for code in health.json()["municipalities"]]
            time.sleep(0.2)
    raise CliError(f"the municipalities' certificate server did not answer on {url} in {MUNICIPAL_START_SECONDS:.0f} s")


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration (applied by it in the supervisor and in each worker):
    every logger, uvicorn's included, writes to stderr in LOG_FORMAT at INFO, as `main` sets
    up the command's own logging. Without it a worker has uvicorn's untimed format and drops
    the service's INFO lines (its root logger has no handler)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"certserver": {"format": LOG_FORMAT}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "certserver", "stream": "ext://sys.stderr"}
        },
        "root": {"level": "INFO", "handlers": ["stderr"]},
        "loggers": {
            **{
                name: {"level": "INFO", "handlers": [], "propagate": True}
                for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
            },
            "alembic": {"level": "WARNING"},  # announces each of its plugins at INFO on every start
            "httpx": {"level": "WARNING"},  # one line per LGWAN call: the centre logs what matters itself
        },
    }


def worker_app() -> FastAPI:
    """Factory of each worker process (uvicorn's import string): the app from CERTSERVER_*,
    in a process that ends with its supervisor. Raises DeploymentCheckError."""
    from certserver.app import app_from_environment

    supervisor = multiprocessing.parent_process()  # uvicorn starts its workers with spawn
    if supervisor is not None:
        _end_with_the_supervisor(supervisor)
    return app_from_environment()


def _end_with_the_supervisor(supervisor: BaseProcess) -> None:
    """Shut this worker down (SIGTERM: uvicorn's orderly shutdown, the app's lifespan ending
    its render processes) as soon as the supervisor is gone, however it ended.

    On Linux the kernel's parent-death signal is the immediate notice. It fires when the
    *thread* that started this process ends; uvicorn's supervisor starts and restarts every
    worker from its main thread, so that is when the supervisor process ends. A thread
    watching the supervisor's sentinel (a pipe only the supervisor holds open) covers what
    the signal cannot: a supervisor killed before this process asked for it, a platform
    without it, and a shutdown that hangs (ended after ORPHAN_SHUTDOWN_SECONDS).
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            logger.warning(
                "no parent-death signal (errno %d); the supervisor is watched by a thread", ctypes.get_errno()
            )
    threading.Thread(target=_watch_the_supervisor, args=(supervisor,), name="supervisor-watch", daemon=True).start()


def _watch_the_supervisor(supervisor: BaseProcess) -> None:
    multiprocessing.connection.wait([supervisor.sentinel])
    logger.error("the supervising process %s is gone: worker %d shuts down", supervisor.pid, os.getpid())
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(ORPHAN_SHUTDOWN_SECONDS)
    logger.error(
        "worker %d did not shut down in %.0f s without its supervisor: ending it", os.getpid(), ORPHAN_SHUTDOWN_SECONDS
    )
    os._exit(1)


def _share_clock(app: FastAPI, settings: Settings) -> None:
    """Record the service's clock in the data folder, for its workers and the commands run
    beside it (a revocation from the shell then carries the service's time). Raises CliError."""
    from certserver.clock import ClockFileError, save_clock

    try:
        save_clock(settings.data_dir, app.state.service.clock)
    except ClockFileError as exc:
        app.state.engine.dispose()
        if app.state.render_processes is not None:
            app.state.render_processes.close()
        raise CliError(f"refusing to start: {exc}") from exc


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
