"""Request dependencies: one session and one database transaction per request, the kiosk
credential check, the request's clock reading, and idempotent replays of POSTs.

The session commits before the route returns, so a kiosk never sees an answer whose writes
could still be lost. It also commits when the route raises a refusal (see
api.errors.REFUSALS): a refusal's audit entry, spent challenge or ended transaction must
stand. Anything else rolls back.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker

from certserver.api.errors import REFUSALS, ApiError, invalid_request, refusal_response
from certserver.centre.transactions import TransactionService
from certserver.clock import Clock
from certserver.config import Settings
from certserver.db.models.transactions import IdempotencyRecord, Kiosk
from certserver.municipal.service import RENDER_TIMEOUT_SECONDS
from certserver.services.authentication import as_utc
from certserver.services.kiosks import (
    KioskAuthenticationError,
    authenticate_kiosk,
    parse_authorization,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
IN_PROGRESS = 0  # status_code of an idempotency record whose request has not finished
# A request still "in progress" after this long was abandoned (its process died): twice the
# longest an order may render, which is the longest any request runs.
ABANDONED_AFTER = timedelta(seconds=2 * RENDER_TIMEOUT_SECONDS)


@dataclass
class ServiceContext:
    """What the app factory builds once and every request uses."""

    settings: Settings
    session_factory: sessionmaker[Session]
    transactions: TransactionService
    clock: Clock
    db_turns: int = 1  # database connections of this process: requests that can use one at once
    db_limiter: anyio.CapacityLimiter | None = None


def service_context(request: Request) -> ServiceContext:
    return request.app.state.service


async def in_db_turn(request: Request, work: Callable[[], T]) -> T:
    """Run `work` (which opens its own unit of work) in a worker thread, at most as many at
    once as the service has database connections.

    Threads beyond that would only wait for a connection while competing for the
    interpreter: on SQLite (one connection per process), one thread at a time instead of
    FastAPI's 40 measured ~20% less server CPU per transaction and ~25% more transactions/s
    at 50 kiosks (bench/service_bench.py, three runs each). The limiter is made on first
    use because it belongs to the running event loop.
    """
    context = service_context(request)
    if context.db_limiter is None:
        context.db_limiter = anyio.CapacityLimiter(context.db_turns)
    return await anyio.to_thread.run_sync(work, limiter=context.db_limiter)


@dataclass
class Call:
    """Everything a route needs: session, kiosk, the moment, the services."""

    session: Session
    kiosk: Kiosk
    now: datetime
    service: ServiceContext
    idempotency_key: str | None

    @property
    def transactions(self) -> TransactionService:
        return self.service.transactions


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is not None and not (1 <= len(key) <= 128 and key.isprintable()):
        raise invalid_request("Idempotency-Key must be 1-128 printable characters.")
    return key


@contextmanager
def unit_of_work(request: Request) -> Iterator[Call]:
    """One session and database transaction for the request, with the kiosk authenticated.

    Used inside the route body, so that everything that holds a database connection runs
    in one worker thread: were the session opened in a dependency, its set-up, the route
    and its tear-down would be three thread-pool calls, and requests holding the (few)
    connections could wait for a thread while every thread waits for a connection.

    Raises KioskAuthenticationError, ApiError (a malformed Idempotency-Key).
    """
    context = service_context(request)
    key = _idempotency_key(request)
    session = context.session_factory()
    try:
        try:
            kiosk_id, secret = parse_authorization(request.headers.get("authorization"))
            kiosk = authenticate_kiosk(session, kiosk_id, secret)
        except KioskAuthenticationError:
            logger.warning("refused a kiosk credential from %s", request.client.host if request.client else "?")
            raise
        yield Call(session, kiosk, context.clock(), context, key)
        session.commit()
    except REFUSALS:
        session.commit()
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def fingerprint(method: str, path: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method} {path} {canonical}".encode()).hexdigest()


def idempotent(c: Call, request: Request, body: Any, produce: Callable[[], tuple[int, Any]]) -> JSONResponse:
    """Run `produce` once per (kiosk, Idempotency-Key); a retry gets the stored answer.

    A placeholder record is written first, so a retry that arrives while the first try is
    still running (an order while its PDFs render) is told "request_in_progress" instead of
    being run twice; a placeholder older than ABANDONED_AFTER was left by a crash, and the
    retry runs. When the transaction ends its stored answers become "transaction_ended"
    (services.retention). Raises ApiError "idempotency_key_reused" when the key comes back with a
    different request.
    """
    replay = begin_idempotent(c, request, body)
    if replay is not None:
        return replay
    try:
        status, payload = produce()
    except REFUSALS as exc:
        finish_idempotent_refusal(c, exc)
        raise
    finish_idempotent(c, status, payload)
    return JSONResponse(payload, status_code=status)


def begin_idempotent(c: Call, request: Request, body: Any) -> JSONResponse | None:
    """The stored answer when this is a retry; else None, after writing the placeholder
    (when the request has a key) that `finish_idempotent` completes. Raises ApiError
    "idempotency_key_reused" or "request_in_progress"."""
    key = c.idempotency_key
    if key is None:
        return None
    print_ = fingerprint(request.method, request.url.path, body)
    record = c.session.get(IdempotencyRecord, (c.kiosk.id, key))
    if record is not None:
        if record.fingerprint != print_:
            raise ApiError.of("idempotency_key_reused")
        if record.status_code != IN_PROGRESS:
            return JSONResponse(
                json.loads(record.body), status_code=record.status_code, headers={"Idempotent-Replayed": "true"}
            )
        if c.now - as_utc(record.created_at) < ABANDONED_AFTER:
            raise ApiError.of("request_in_progress")
        # No request runs this long: the one that wrote the placeholder died with its
        # process (an order killed while rendering). This retry runs in its place.
        logger.warning(
            "kiosk %s: an abandoned request left its Idempotency-Key in progress; running the retry", c.kiosk.id
        )
        record.created_at = c.now
        c.session.flush()
        return None
    c.session.add(
        IdempotencyRecord(
            kiosk_id=c.kiosk.id,
            key=key,
            fingerprint=print_,
            status_code=IN_PROGRESS,
            body="null",
            created_at=c.now,
            transaction_id=request.path_params.get("transaction_id"),
        )
    )
    c.session.flush()
    return None


def finish_idempotent(c: Call, status: int, payload: Any) -> None:
    """Store the answer for retries of this request (nothing without a key)."""
    if c.idempotency_key is not None:
        _finish(c.session, c.kiosk.id, c.idempotency_key, status, payload)


def finish_idempotent_refusal(c: Call, exc: Exception) -> None:
    """Store a refusal as the answer for retries of this request."""
    status, payload = refusal_response(exc)
    finish_idempotent(c, status, payload)


def _finish(session: Session, kiosk_id: str, key: str, status: int, payload: Any) -> None:
    # Looked up again: `produce` may have committed (orders do), expiring loaded objects.
    record = session.get(IdempotencyRecord, (kiosk_id, key))
    if record is None:  # pragma: no cover - the placeholder is ours
        return
    record.status_code = status
    record.body = json.dumps(payload, ensure_ascii=False, default=str)
    if record.transaction_id is None and isinstance(payload, dict):
        # A start names its transaction only in its answer.
        record.transaction_id = payload.get("transaction_id")
