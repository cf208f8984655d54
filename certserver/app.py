"""The issuing service's web application: one factory for `certserver serve` and the tests.

`create_app` first checks that the configuration fits the deployment and refuses to build
an app otherwise (Takamatsu 2024: a single-server build ran on several servers, service.md
§7). It refuses:
- settings that contradict each other (TTLs, pool sizes, an unknown time zone);
- a data folder (or SQLite database folder) other users may enter or read;
- an in-memory SQLite database (private to one connection, gone on restart);
- several workers on SQLite unless the file is in WAL mode on a local file system (SQLite's
  locking does not work over NFS/SMB, and a rollback journal would block readers);
- a database that is not migrated to the newest revision, or a SQLite file that fails
  `PRAGMA quick_check` (a damaged file is refused, never served from);
- a missing or damaged CA, or missing fonts.
Everything the service knows lives in the database, so any number of workers on one
database (PostgreSQL, or a local SQLite file in WAL mode) behave as one service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import httpx
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi import FastAPI
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from certserver.api import pki_routes, routes
from certserver.api.deps import ServiceContext
from certserver.api.errors import error_body, install_error_handlers
from certserver.centre.municipalities import LgwanMunicipalities, LocalMunicipalities, MunicipalityLink
from certserver.centre.transactions import CheckRevoked, TransactionService, ValidateCard, certificate_status
from certserver.clock import Clock, FollowedClock, ServiceClock, host_now, load_clock
from certserver.config import Settings
from certserver.data_folder import OpenDataFolderError, check_private
from certserver.db.session import (
    alembic_config,
    make_engine,
    make_session_factory,
    queue_writers_on_a_file_lock,
    quick_check,
    truncate_wal,
)
from certserver.municipal.service import MunicipalService, Renderer
from certserver.pki.ca import CaBundle, CaError
from certserver.pki.validation import (
    ValidatedCard,
    check_not_revoked,
    validate_card_certificate,
    verify_challenge_signature,
)
from certserver.refusals import messages
from certserver.services import audit
from certserver.services.retention import purge_idempotency_records

if TYPE_CHECKING:
    from certserver.documents.render_processes import ProcessRenderer

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024  # the largest legitimate request is a certificate (~2 KiB) in base64
NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "fuse.sshfs", "afs", "ceph", "glusterfs"}
)


class DeploymentCheckError(Exception):
    """The configuration does not fit this deployment; the service refuses to start."""


# -- start-up checks ----------------------------------------------------------------------


def check_settings(settings: Settings) -> None:
    """Settings that contradict each other. Raises DeploymentCheckError."""
    problems = []
    if settings.workers < 1:
        problems.append("workers must be at least 1")
    if settings.render_pool_size < 1:
        problems.append("render_pool_size must be at least 1")
    if settings.render_processes < 0:
        problems.append("render_processes must be 0 (render inside the server process) or more")
    if settings.challenge_ttl_seconds < 1 or settings.transaction_ttl_seconds < 1:
        problems.append("challenge and transaction TTLs must be positive")
    elif settings.challenge_ttl_seconds > settings.transaction_ttl_seconds:
        problems.append("challenge_ttl_seconds must not exceed transaction_ttl_seconds")
    if problems:
        raise DeploymentCheckError("; ".join(problems))


def check_data_folders(settings: Settings) -> None:
    """The data folder, and a SQLite database's folder, are closed to other users (unless
    `allow_open_data_dir`, for tests). Raises DeploymentCheckError."""
    if settings.allow_open_data_dir:
        return
    folders = [settings.data_dir]
    url = settings.resolved_database_url
    if url.startswith("sqlite:///") and not _is_memory_sqlite(url):
        folders.append(Path(url.removeprefix("sqlite:///")).parent)
    for folder in dict.fromkeys(f.resolve() for f in folders):
        try:
            check_private(folder)
        except OpenDataFolderError as exc:
            raise DeploymentCheckError(str(exc)) from exc


def _is_memory_sqlite(url: str) -> bool:
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and (parsed.database in (None, "", ":memory:") or "mode=memory" in url)


def _filesystem_type(path: Path) -> str | None:
    """The file system type of the mount holding `path` (Linux /proc/self/mountinfo)."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    best, fstype = "", None
    target = str(path.resolve())
    for line in lines:
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) < 5 or not right:
            continue
        mount_point = fields[4]
        if (target == mount_point or target.startswith(mount_point.rstrip("/") + "/")) and len(mount_point) > len(best):
            best, fstype = mount_point, right.split()[0]
    return fstype


def check_database(engine: Engine, settings: Settings) -> None:
    """The database is reachable, sound (SQLite's quick_check), migrated to head, and fits
    the worker count. On SQLite it also truncates a WAL a crash left behind.

    Raises DeploymentCheckError.
    """
    url = engine.url.render_as_string(hide_password=False)
    damage = None
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                damage = quick_check(connection)
            current = set(MigrationContext.configure(connection).get_current_heads())
            journal = None
            if engine.dialect.name == "sqlite":
                journal = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
    except SQLAlchemyError as exc:
        raise DeploymentCheckError(
            f"cannot open the database: {exc.__class__.__name__}"
            f"{' (the file is damaged: restore it from a backup)' if _is_corrupt(exc) else ''}"
        ) from exc
    if damage is not None:
        raise DeploymentCheckError(f"the SQLite database is damaged (quick_check: {damage}); restore it from a backup")
    heads = set(ScriptDirectory.from_config(alembic_config(url)).get_heads())
    if current != heads:
        raise DeploymentCheckError(
            f"the database is at revision {sorted(current) or 'none'}, the code needs {sorted(heads)}: "
            "run `certserver init` (it migrates) first"
        )
    if engine.dialect.name == "sqlite":
        _truncate_wal_left_by_a_crash(engine)
    if engine.dialect.name == "sqlite" and settings.workers > 1:
        if str(journal).lower() != "wal":
            raise DeploymentCheckError(f"{settings.workers} workers need SQLite in WAL mode (it is {journal})")
        database = engine.url.database or ""
        fstype = _filesystem_type(Path(database).parent)
        if fstype in NETWORK_FILESYSTEMS:
            raise DeploymentCheckError(
                f"the SQLite file is on a network file system ({fstype}); several workers or servers "
                "must share a PostgreSQL database instead"
            )


def _is_corrupt(exc: SQLAlchemyError) -> bool:
    """SQLite's "file is not a database" / "database disk image is malformed"."""
    return "not a database" in str(exc) or "malformed" in str(exc)


def _truncate_wal_left_by_a_crash(engine: Engine) -> None:
    """A service killed between an erasure and its checkpoint leaves the erased pages in
    the WAL; the next start copies them out and cuts the WAL before serving."""
    raw = engine.raw_connection()
    try:
        truncate_wal(raw.driver_connection)
    finally:
        raw.close()


def _serialize_sqlite_transactions(engine: Engine) -> None:
    """Make every SQLite transaction BEGIN IMMEDIATE.

    pysqlite starts transactions lazily and as readers; a reader that later writes while
    another connection wrote fails with SQLITE_BUSY at once (no retry). Taking the write
    lock at BEGIN makes transactions queue on busy_timeout instead, and makes the audit
    log's append order the commit order.
    """

    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def build_engine(settings: Settings) -> Engine:
    """The service's engine, after the configuration checks. Raises DeploymentCheckError."""
    url = settings.resolved_database_url
    if _is_memory_sqlite(url):
        raise DeploymentCheckError(
            "an in-memory SQLite database cannot hold the service's state; use a file or PostgreSQL"
        )
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        # Opening it would create an empty database (and its folder) behind the operator's back.
        raise DeploymentCheckError(
            f"no database at {url.removeprefix('sqlite:///')}: run `certserver init` first "
            "(or pass the --data-dir it used)"
        )
    pool_size, max_overflow = pool_limits(settings)
    engine = make_engine(url, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=60)
    if url.startswith("sqlite"):
        _serialize_sqlite_transactions(engine)
        # Several workers on one file queue on an OS lock, not on SQLite's sleeping busy handler.
        queue_writers_on_a_file_lock(engine, Path(f"{make_url(url).database}.writer-lock"))
    return engine


def pool_limits(settings: Settings) -> tuple[int, int]:
    """(pool_size, max_overflow) of the service's engine: one connection per process on
    SQLite, enough for the render pool's orders and the other requests on PostgreSQL.

    SQLite has one writer anyway, and threads waiting on a pool queue wake at once, where
    SQLite's busy handler sleeps in steps."""
    if settings.resolved_database_url.startswith("sqlite"):
        return 1, 0
    return max(10, settings.render_pool_size * 2), 10


def _load_ca(settings: Settings) -> CaBundle:
    try:
        return CaBundle.load(settings.ca_dir)
    except CaError as exc:
        raise DeploymentCheckError(str(exc)) from exc


def _default_renderer(settings: Settings) -> Renderer:
    """The document service in this process (render_processes 0), or render processes
    started and warmed now, so that a damaged CA folder is refused here and the first order
    is not slow. Raises DeploymentCheckError."""
    from certserver.documents.errors import DocumentError
    from certserver.documents.render_processes import ProcessRenderer, RenderStartError
    from certserver.documents.service import DocumentService
    from certserver.documents.signing import SignerStore

    if settings.render_processes > 0:
        renderer = ProcessRenderer(settings.ca_dir, settings.render_processes)
        try:
            renderer.start()
        except RenderStartError as exc:
            raise DeploymentCheckError(f"the document service cannot start: {exc}") from exc
        return renderer
    try:
        return DocumentService(SignerStore.open(settings.ca_dir))
    except DocumentError as exc:
        raise DeploymentCheckError(f"the document service cannot start: {exc.message_en}") from exc


def _as_render_processes(renderer: Renderer) -> ProcessRenderer | None:
    from certserver.documents.render_processes import ProcessRenderer

    return renderer if isinstance(renderer, ProcessRenderer) else None


# -- the app --------------------------------------------------------------------------------


class BodySizeLimit:
    """Refuse kiosk API request bodies over `limit` bytes with 413 before anything parses
    them (the verification endpoints take whole PDFs and keep their own limit)."""

    def __init__(self, app: ASGIApp, limit: int, prefix: str = "/api/") -> None:
        self.app = app
        self.limit = limit
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(scope, receive, send)
            return
        received = 0
        too_large = started = False

        async def limited_receive() -> Any:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    too_large = True
                    raise _BodyTooLargeError
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            # A chunked body has no Content-Length to refuse up front; the framework turns
            # the failed read into its own 400/422, which is dropped for the documented 413.
            if too_large and not started:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        with contextlib.suppress(_BodyTooLargeError):
            await self.app(scope, limited_receive, guarded_send)
        if too_large and not started:
            await self._refuse(scope, receive, send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
        from fastapi.responses import JSONResponse

        response = JSONResponse(error_body("payload_too_large", *messages("payload_too_large")), status_code=413)
        await response(scope, receive, send)


class _BodyTooLargeError(Exception):
    pass


def _sweep_interval(settings: Settings) -> float:
    return float(min(30, max(1, settings.challenge_ttl_seconds // 2)))


def service_clock(settings: Settings, factory: sessionmaker[Session]) -> ServiceClock:
    """The service's clock: the host's time, or with `settings.pretend_time` that moment
    running on, continued from the audit log's newest entry when that is later (a restart
    never takes the service back in time)."""
    with factory() as session:
        last = audit.last_recorded_at(session)
    if settings.pretend_time is None:
        if last is not None and last > host_now():
            logger.warning(
                "the audit log's newest entry (%s) is later than the host's time: entries "
                "carry its time until the clock passes it",
                last.isoformat(),
            )
        return ServiceClock()
    return ServiceClock.pretending_from(settings.pretend_time, last_recorded=last)


def create_app(settings: Settings, *, clock: Clock | None = None, renderer: Renderer | None = None) -> FastAPI:
    """The service's ASGI app, after checking the configuration fits the deployment.

    `clock` (default: `service_clock`) lets tests move time and `serve`'s workers share one;
    `renderer` replaces the document service (only the benchmark does, and says so). With `settings.render_processes` the render
    processes start here and end with the app's lifespan (`app.state.render_processes`;
    whoever builds an app and never serves it closes them). Raises DeploymentCheckError.
    """
    check_settings(settings)
    check_data_folders(settings)
    engine = build_engine(settings)
    render_processes = None  # the render processes this app started, and so ends
    jpki_engine = None
    try:
        check_database(engine, settings)
        jpki_engine = _jpki_engine(settings)
        ca = _load_ca(settings)
        if renderer is None and not settings.lgwan_endpoints:
            renderer = _default_renderer(settings)
            render_processes = _as_render_processes(renderer)
    except BaseException:
        engine.dispose()
        if jpki_engine is not None:
            jpki_engine.dispose()
        raise
    factory = make_session_factory(engine)
    jpki_factory = factory if jpki_engine is None else make_session_factory(jpki_engine)
    # Each render process is fed by one waiting thread: fewer threads would leave processes idle.
    render_pool = ThreadPoolExecutor(
        max_workers=max(settings.render_pool_size, settings.render_processes), thread_name_prefix="render"
    )
    municipalities, lgwan_client = _municipality_link(settings, factory, renderer, render_pool)
    validate_card, check_revoked = _jpki_reads(factory, jpki_factory, ca)
    transactions = TransactionService(
        transaction_ttl_seconds=settings.transaction_ttl_seconds,
        challenge_ttl_seconds=settings.challenge_ttl_seconds,
        validate_card=validate_card,
        verify_signature=verify_challenge_signature,
        municipalities=municipalities,
        check_revoked=check_revoked,
    )
    if clock is None:
        clock = service_clock(settings, factory)
        if settings.pretend_time is not None:
            clock = FollowedClock(settings.data_dir, clock)  # `certserver clock forward` moves it
    context = ServiceContext(
        settings=settings,
        session_factory=factory,
        transactions=transactions,
        clock=clock,
        db_turns=sum(pool_limits(settings)),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(_sweep_forever(context, _sweep_interval(settings)))
        logger.info(
            "certserver ready (%s, %d worker(s), %s)",
            engine.dialect.name,
            settings.workers,
            f"{settings.render_processes} render process(es)" if render_processes else "rendering in threads",
        )
        try:
            yield
        finally:
            await _stop(sweeper)
            _stop_rendering(render_pool, render_processes)
            if lgwan_client is not None:
                await lgwan_client.aclose()
            if jpki_engine is not None:
                jpki_engine.dispose()
            engine.dispose()

    app = FastAPI(
        title="konbini-kiosk certserver",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    app.state.service = context
    app.state.engine = engine
    app.state.render_processes = render_processes
    app.state.pki = pki_routes.PkiContext(session_factory=jpki_factory, ca=ca, clock=clock)
    install_error_handlers(app)
    app.include_router(routes.router)
    app.include_router(pki_routes.router)
    _include_verify_router(app, settings, factory)
    app.add_middleware(BodySizeLimit, limit=MAX_BODY_BYTES)
    return app


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _stop_rendering(render_pool: ThreadPoolExecutor, render_processes: ProcessRenderer | None) -> None:
    render_pool.shutdown(wait=True, cancel_futures=True)
    if render_processes is not None:
        render_processes.close()  # after the threads: no render is waiting on them now


def _jpki_engine(settings: Settings) -> Engine | None:
    """The JPKI service's store, when the data folder keeps it apart from the centre's (the
    centre and JPKI are both J-LIS's: the centre reads the certificate records in this
    process). Raises DeploymentCheckError."""
    if not settings.split_layout:
        return None
    jpki = settings.for_role("jpki")
    check_data_folders(jpki)
    engine = build_engine(jpki)
    try:
        check_database(engine, jpki)
    except BaseException:
        engine.dispose()
        raise
    return engine


def _jpki_reads(
    factory: sessionmaker[Session], jpki: sessionmaker[Session], ca: CaBundle
) -> tuple[ValidateCard, CheckRevoked]:
    """The centre's reads of the JPKI records: in the request's own session in the
    all-in-one layout, else each in a session of its own on the JPKI store."""
    if jpki is factory:
        return (lambda session, der, at: validate_card_certificate(session, ca, der, at)), check_not_revoked

    def validate(_session: Session, der: bytes, at: datetime) -> ValidatedCard:
        with jpki() as records:
            return validate_card_certificate(records, ca, der, at)

    def check_revoked(_session: Session, serial: str) -> None:
        with jpki() as records:
            check_not_revoked(records, serial)

    return validate, check_revoked


def _municipality_link(
    settings: Settings, factory: sessionmaker[Session], renderer: Renderer | None, render_pool: ThreadPoolExecutor
) -> tuple[MunicipalityLink, httpx.AsyncClient | None]:
    """The centre's link to the certificate servers: over LGWAN (mutual TLS) when endpoints
    are configured, else every municipality's server in this process, on this database (the
    all-in-one deployment). Raises DeploymentCheckError (LGWAN files missing)."""
    if not settings.lgwan_endpoints:
        assert renderer is not None  # create_app makes one when there is no LGWAN link
        return LocalMunicipalities(MunicipalService(factory, renderer, render_pool)), None
    from certserver.lgwan.tls import LgwanTlsError, centre_client_files, client_ssl_context

    try:
        tls = client_ssl_context(centre_client_files(settings.lgwan_dir))
    except LgwanTlsError as exc:
        raise DeploymentCheckError(f"the LGWAN link cannot start: {exc}") from exc
    client = httpx.AsyncClient(verify=tls, timeout=settings.lgwan_timeout_seconds)
    return LgwanMunicipalities(settings.lgwan_endpoints, client), client


def _include_verify_router(app: FastAPI, settings: Settings, factory: sessionmaker[Session]) -> None:
    """Public document verification, answering "issued" / "withdrawn" from the documents table."""
    from certserver.api import verify_routes
    from certserver.documents.verification import TrustStore

    def lookup(certificate_number: str) -> str | None:
        with factory() as session:
            return certificate_status(session, certificate_number)

    verify_routes.configure(app, TrustStore.from_ca_dir(settings.ca_dir), lookup)
    app.include_router(verify_routes.router)


async def _sweep_forever(context: ServiceContext, interval: float) -> None:
    """End overdue transactions even when their kiosk never comes back, and delete
    idempotency records past their retention."""
    while True:
        await asyncio.sleep(interval)
        try:
            count = await anyio.to_thread.run_sync(
                context.transactions.expire_due, context.session_factory, context.clock()
            )
            if count:
                logger.info("expired %d overdue transaction(s)", count)
            purged = await anyio.to_thread.run_sync(purge_idempotency_records, context.session_factory, context.clock())
            if purged:
                logger.info("deleted %d idempotency record(s) past their retention", purged)
            reported = await context.transactions.deliver_outcomes(context.session_factory, context.clock())
            if reported:
                logger.info("reported %d order outcome(s) to the municipalities", reported)
            link = context.transactions.municipalities
            if isinstance(link, LocalMunicipalities):  # the certificate server in this process sweeps here
                await anyio.to_thread.run_sync(link.service.erase_unsettled_answers)
        except Exception:  # the sweep must survive a busy database; the next round retries
            logger.exception("expiry sweep failed")


def app_from_environment() -> FastAPI:
    """Factory for `uvicorn --factory` (several workers): settings from CERTSERVER_*; a
    pretended clock as `serve` recorded it in the data folder, so that every worker reads
    the same one (without that record, from the settings). Raises DeploymentCheckError,
    ClockFileError."""
    settings = Settings()
    clock: Clock | None = None
    if settings.pretend_time is not None:
        recorded = load_clock(settings.data_dir)
        clock = FollowedClock(settings.data_dir, recorded) if recorded.pretending else None
    return create_app(settings, clock=clock)


def create_municipal_app(settings: Settings, served: list[str] | None = None) -> FastAPI:
    """A municipality's certificate server for the municipalities `served` (their codes;
    None: every municipality of its store), over its own database and signing keys, after
    the same deployment checks as the centre's. Raises DeploymentCheckError."""
    from certserver.municipal.app import build_municipal_app

    check_settings(settings)
    check_data_folders(settings)
    engine = build_engine(settings)
    try:
        check_database(engine, settings)
        if served is None:
            served = _municipalities_in(engine)
        renderer = _default_renderer(settings)
    except BaseException:
        engine.dispose()
        raise
    render_processes = _as_render_processes(renderer)
    render_pool = ThreadPoolExecutor(
        max_workers=max(settings.render_pool_size, settings.render_processes), thread_name_prefix="render"
    )
    service = MunicipalService(make_session_factory(engine), renderer, render_pool, codes=frozenset(served))

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        logger.info("municipality certificate server ready for %s (%s)", ", ".join(served), engine.dialect.name)
        sweeper = asyncio.create_task(_erase_unsettled_forever(service))
        try:
            yield
        finally:
            await _stop(sweeper)
            _stop_rendering(render_pool, render_processes)
            engine.dispose()

    app = build_municipal_app(service, served, lifespan)
    app.state.engine = engine
    app.state.municipal = service
    return app


def _municipalities_in(engine: Engine) -> list[str]:
    """The codes of the municipalities a store holds. Raises DeploymentCheckError (none)."""
    from sqlalchemy import select

    from certserver.db.models.registry import Municipality

    with Session(engine) as session:
        codes = list(session.scalars(select(Municipality.code).order_by(Municipality.code)))
    if not codes:
        raise DeploymentCheckError("the store holds no municipality: a certificate server would serve nobody")
    return codes


async def _erase_unsettled_forever(service: MunicipalService, interval: float = 60.0) -> None:
    """The certificate server's own sweep: stored answers whose outcome never came."""
    while True:
        await asyncio.sleep(interval)
        try:
            erased = await anyio.to_thread.run_sync(service.erase_unsettled_answers)
            if erased:
                logger.info("erased the stored answers of %d order(s) whose outcome never came", erased)
        except Exception:  # the sweep must survive a busy database; the next round retries
            logger.exception("the sweep of unsettled orders failed")
