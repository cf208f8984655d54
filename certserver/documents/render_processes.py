"""Certificates rendered in worker processes, so rendering uses the cores the web server does not.

Rendering and signing one 住民票 costs ~6 ms of CPU and holds the GIL; inside the server's
process it takes turns with every HTTP request and database call on one core.
`ProcessRenderer` has DocumentService's `render` (the transaction service's Renderer
protocol) but forwards each call to a pool of worker processes. Each worker builds its own
DocumentService once, at start (fonts, background and every municipality's signing keys
loaded there), and the calling thread of the app's render thread pool only waits for the
answer, with the GIL released.

Start method: forkserver (spawn where the platform lacks it), never fork: the server process
has threads and an event loop, and a forked child could inherit one of their locks held.

What crosses the process boundary: the CertificateContent (frozen dataclasses of str, date,
enum and tuples), the RenderedDocument (bytes, str, int), and a refusal as the
DocumentError itself (it pickles with its class, code and messages).

A worker that dies (killed, out of memory, crashed in a C extension) breaks the whole pool:
the renders in flight at that moment fail with RenderWorkerLostError (the kiosk is told
render_failed; nothing was charged, rendering comes before payment), and the pool is
rebuilt for the next orders. A worker that dies while idle costs no order at all: the next
render notices the broken pool before submitting and runs on the new one. The workers end
with the server however it ends: `close()` in the app's lifespan, or, when the server
process is killed outright, each worker's watch on a pipe only the server holds open.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import signal
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from certserver.documents.content import CertificateContent
from certserver.documents.errors import DocumentError
from certserver.documents.service import DocumentService, RenderedDocument
from certserver.documents.signing import SignerStore

logger = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 120.0  # every worker up, with its DocumentService built (a busy machine)
# One certificate takes milliseconds; a worker still busy after this is stuck (a hung
# library call, a stopped process) and is ended, so that it cannot hold an order, a thread
# and a render process for ever. Below the transaction service's own wait for a render.
RENDER_TIMEOUT_SECONDS = 60.0
# Imported once by the fork server, so each worker starts with reportlab, pyhanko and
# cryptography already loaded instead of importing them again (~1 s each on this machine).
_PRELOAD = ["__main__", "certserver.documents.service"]


def default_render_processes() -> int:
    """How many render processes `certserver serve` starts unless told: 2 when the machine
    has 2 or more cores (one uvicorn worker keeps about one core busy with HTTP and the
    database; two renderers keep up with it), else 0 (one core gains nothing from processes)."""
    return 2 if (os.cpu_count() or 1) >= 2 else 0


class RenderProcessError(Exception):
    """Rendering in a worker process failed for a reason other than the document itself."""


class RenderStartError(RenderProcessError):
    """The render processes could not start (e.g. a damaged signing key); `str()` says why."""


class RenderWorkerLostError(RenderProcessError):
    """The worker process rendering this certificate died before answering."""


# -- what crosses the boundary --------------------------------------------------------------


@dataclass(frozen=True)
class _StartFailure:
    """Why a worker could not build its DocumentService (reported by the warm-up)."""

    reason: str


# -- the worker process side ----------------------------------------------------------------

_service: DocumentService | None = None
_start_failure: _StartFailure | None = None
_all_started: Any = None  # the pool's multiprocessing Barrier, used once by the warm-up


def _start_worker(ca_dir: str, log_level: int, all_started: Any, server_alive: Connection) -> None:
    """Pool initializer: build this process's DocumentService with every municipality's keys.

    Never raises (an initializer that raises only breaks the pool, without a reason): a
    failure is kept and reported by the warm-up and by every render.
    """
    global _service, _start_failure, _all_started
    logging.basicConfig(
        level=log_level, format="%(asctime)s %(levelname)s %(name)s [render process %(process)d]: %(message)s"
    )
    # Ctrl-C in the server's terminal reaches this process too; the server ends it in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_end_with_the_server, args=(server_alive,), name="server-watch", daemon=True).start()
    _all_started = all_started
    try:
        store = SignerStore.open(Path(ca_dir))
        service = DocumentService(store)
        for code in store.municipality_codes():
            store.signer(code)  # parsed now, not at this municipality's first order
        _service = service
    except DocumentError as exc:
        _start_failure = _StartFailure(exc.message_en)
    except Exception as exc:  # noqa: BLE001 - a damaged key file raises ValueError, say; reported, not lost
        _start_failure = _StartFailure(f"{type(exc).__name__}: {exc}")


def _end_with_the_server(server_alive: Connection) -> None:
    """Exit as soon as the server process is gone, however it ended (SIGKILL, out of memory).

    Nothing else would end this process: it waits on the pool's call queue, which it holds
    open itself, and the fork server it came from lives as long as its children do.
    `server_alive` is the read end of a pipe whose only write end the server holds; the
    server never writes, so reading returns only at end of file: when the server is gone.
    """
    with contextlib.suppress(EOFError, OSError):
        server_alive.recv_bytes()
    os._exit(0)


def _report_started(timeout: float) -> int | _StartFailure:
    """Warm-up task: wait until every worker of the pool has run its initializer (each of
    them holds one of these tasks, so none can take two), then answer with this pid."""
    _all_started.wait(timeout)
    return _start_failure or os.getpid()


def _render_in_worker(content: CertificateContent) -> RenderedDocument:
    """Render here.

    Raises RenderStartError when this worker could not start, or the renderer's own
    exception (a DocumentError arrives as itself; another one that cannot be pickled as a
    RenderProcessError naming it).
    """
    if _service is None:
        raise RenderStartError(_start_failure.reason if _start_failure else "the render process did not start")
    try:
        return _service.render(content)
    except Exception as exc:
        if _survives_pickle(exc):
            raise
        raise RenderProcessError(f"{type(exc).__name__}: {exc}") from None


def _survives_pickle(exc: BaseException) -> bool:
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - whatever stops the round trip, the answer is "no"
        return False
    return True


# -- the server process side ----------------------------------------------------------------


def _context() -> multiprocessing.context.BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)  # only takes effect before the fork server starts
        return context
    return multiprocessing.get_context("spawn")


class ProcessRenderer:
    """Renders certificates in `processes` worker processes; thread-safe.

    `start()` launches the workers and waits until each has built its DocumentService, so a
    damaged CA folder is refused at start-up and the first order is not slow; `close()` ends
    them after the renders in flight. `render` may be called from any number of threads.
    """

    def __init__(
        self,
        ca_dir: Path,
        processes: int,
        *,
        start_timeout: float = START_TIMEOUT_SECONDS,
        render_timeout: float = RENDER_TIMEOUT_SECONDS,
    ) -> None:
        if processes < 1:
            raise ValueError("a ProcessRenderer needs at least one process")
        self.ca_dir = Path(ca_dir).resolve()
        self.processes = processes
        self.start_timeout = start_timeout
        self.render_timeout = render_timeout
        self._lock = threading.Lock()
        self._open = False
        self._pool: ProcessPoolExecutor | None = None
        self._pids: tuple[int, ...] = ()
        self._server_alive: dict[
            ProcessPoolExecutor, Connection
        ] = {}  # each pool's write end (see _end_with_the_server)
        self._workers_of: dict[ProcessPoolExecutor, tuple[int, ...]] = {}  # each pool's worker pids

    def start(self) -> None:
        """Launch and warm the workers (nothing to do when they run). Raises RenderStartError."""
        with self._lock:
            self._open = True
            if self._pool is None:
                self._pool, self._pids = self._launch()

    def close(self) -> None:
        """End the workers once the renders in flight are done; `start()` may follow."""
        with self._lock:
            self._open = False
            pool, self._pool, self._pids = self._pool, None, ()
        if pool is not None:
            pool.shutdown(wait=True)
            self._release(pool)

    def worker_pids(self) -> tuple[int, ...]:
        """The process ids of the running workers (empty before start and after close)."""
        with self._lock:
            return self._pids

    def render(self, content: CertificateContent) -> RenderedDocument:
        """The signed PDF of `content`, rendered in a worker process.

        Raises what DocumentService.render raises (DocumentRefusedError gaiji_in_record, ...:
        the same class and code), RenderWorkerLostError when the worker died while rendering,
        RenderStartError when no worker could be started, RenderProcessError after close().
        A render still running after `render_timeout` seconds ends the render processes (the
        other renders in flight fail too) and raises RenderWorkerLostError.
        """
        pool = self._running_pool()
        try:
            future: Future[RenderedDocument] = pool.submit(_render_in_worker, content)
        except BrokenProcessPool:
            # A worker died since the last render (this content never reached it): a new pool.
            pool = self._replace(pool)
            future = pool.submit(_render_in_worker, content)
        try:
            outcome = future.result(timeout=self.render_timeout)
        except TimeoutError as exc:
            logger.error(
                "certificate %s: no render process finished it in %.0f s; restarting the render processes",
                content.certificate_number,
                self.render_timeout,
            )
            self._end_workers(pool)
            self._replace_quietly(pool)
            raise RenderWorkerLostError("the render process did not finish this certificate in time") from exc
        except BrokenProcessPool as exc:
            logger.error(
                "certificate %s: a render process died while rendering it; restarting the render processes",
                content.certificate_number,
            )
            self._replace_quietly(pool)
            raise RenderWorkerLostError("the render process died while rendering this certificate") from exc
        return outcome

    # -- the pool ------------------------------------------------------------------------

    def _running_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if not self._open:
                raise RenderProcessError("the render processes are closed")
            if self._pool is None:  # an earlier rebuild failed: try again for this order
                self._pool, self._pids = self._launch()
            return self._pool

    def _replace(self, broken: ProcessPoolExecutor) -> ProcessPoolExecutor:
        """A working pool instead of `broken` (one rebuild however many threads notice).
        Raises RenderStartError, RenderProcessError after close()."""
        with self._lock:
            if not self._open:
                raise RenderProcessError("the render processes are closed")
            if self._pool is broken or self._pool is None:
                self._pool, self._pids = None, ()
                broken.shutdown(wait=False, cancel_futures=True)
                self._release(broken)  # any of its workers still alive exits now
                self._pool, self._pids = self._launch()
            return self._pool

    def _replace_quietly(self, broken: ProcessPoolExecutor) -> None:
        """Rebuild after a lost worker; a failure is logged and retried by the next render."""
        try:
            self._replace(broken)
        except RenderProcessError as exc:
            logger.error("the render processes could not be restarted: %s", exc)

    def _end_workers(self, pool: ProcessPoolExecutor) -> None:
        """Kill the pool's worker processes (stuck ones do not heed the pipe or SIGTERM)."""
        for pid in self._workers_of.get(pool, ()):
            with contextlib.suppress(ProcessLookupError):  # already gone
                os.kill(pid, signal.SIGKILL)

    def _release(self, pool: ProcessPoolExecutor) -> None:
        self._workers_of.pop(pool, None)
        server_alive = self._server_alive.pop(pool, None)
        if server_alive is not None:
            server_alive.close()

    def _launch(self) -> tuple[ProcessPoolExecutor, tuple[int, ...]]:
        """A new pool whose every worker has built its DocumentService. Raises RenderStartError."""
        context = _context()
        all_started = context.Barrier(self.processes)
        watch_end, server_end = context.Pipe(duplex=False)
        pool = ProcessPoolExecutor(
            max_workers=self.processes,
            mp_context=context,
            initializer=_start_worker,
            initargs=(str(self.ca_dir), logging.getLogger().getEffectiveLevel(), all_started, watch_end),
        )
        self._server_alive[pool] = server_end
        try:
            # One warm-up task per worker: each spawns a process (none is idle yet), and each
            # waits at the barrier, so every worker is up when they return.
            warmups = [pool.submit(_report_started, self.start_timeout) for _ in range(self.processes)]
            answers = [warmup.result(timeout=self.start_timeout + 10) for warmup in warmups]
        except Exception as exc:  # BrokenProcessPool, a broken barrier, a time-out
            all_started.abort()  # the workers waiting there give up now
            pool.shutdown(wait=False, cancel_futures=True)
            self._release(pool)
            raise RenderStartError(f"the render processes did not start ({type(exc).__name__}: {exc})") from exc
        finally:
            watch_end.close()  # the workers hold their own copies
        failures = [answer for answer in answers if isinstance(answer, _StartFailure)]
        if failures:
            pool.shutdown(wait=True)
            self._release(pool)
            raise RenderStartError(failures[0].reason)
        pids = tuple(answer for answer in answers if isinstance(answer, int))
        self._workers_of[pool] = pids
        logger.info("%d render process(es) ready (pids %s)", len(pids), ", ".join(map(str, pids)))
        return pool, pids
