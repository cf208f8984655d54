"""The municipalities' configuration, kept in process memory between requests.

Every menu and order reads its municipality, that municipality's certificate settings,
fee table and maintenance days: the same few rows for every resident, about half of the
statements of an authentication. A process keeps them per database and reads only the
`registry_revision` token on each request (one small select): triggers in the database
give the token a new random value with any write to those tables (migration 0004), so a
stop switch, a new fee or a closure is seen by the very next request, on any worker,
however it was written.

What is cached are transient copies of the rows (ORM objects that belong to no session),
made when a request first needs them. They are shared by threads and only read: never add
one to a session. A resident's own data is never cached: every resident comes once.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from certserver.db.base import Base
from certserver.db.models.registry import RegistryRevision

T = TypeVar("T")

_READ_TOKEN = select(RegistryRevision.__table__.c.token).where(RegistryRevision.__table__.c.id == 1)


class _Generation:
    """The configuration as it was under one revision token."""

    __slots__ = ("token", "values")

    def __init__(self, token: str) -> None:
        self.token = token
        self.values: dict[Hashable, Any] = {}


class ConfigurationCache:
    """The configuration of one database, as of the newest token a request has seen."""

    def __init__(self) -> None:
        self._generation = _Generation("")

    def generation(self, token: str) -> _Generation:
        """The generation for `token`, a fresh one when the token is not the current one.

        Two requests that see different tokens (one began before a change committed) each
        keep to their own generation object, so neither can store rows of one revision
        under the other's token.
        """
        current = self._generation
        if current.token != token:
            current = _Generation(token)
            self._generation = current
        return current


_caches: weakref.WeakKeyDictionary[Engine, ConfigurationCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def cache_for(engine: Engine) -> ConfigurationCache:
    with _caches_lock:
        cache = _caches.get(engine)
        if cache is None:
            cache = _caches[engine] = ConfigurationCache()
        return cache


class ConfigurationView:
    """The configuration as one request sees it: the token is read on first use."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._generation: _Generation | None = None

    def _current(self) -> _Generation:
        if self._generation is None:
            connection = self._session.connection()
            token = connection.execute(_READ_TOKEN).scalar_one()
            self._generation = cache_for(connection.engine).generation(token)
        return self._generation

    def get(self, key: Hashable, load: Callable[[Session], T]) -> T:
        """The value for `key`, loaded by `load` in this request's session on a miss."""
        values = self._current().values
        if key in values:
            return values[key]
        value = load(self._session)
        values[key] = value
        return value


def detached_copy(row: Base) -> Any:
    """A transient copy of an ORM row with its column values (no relationships)."""
    mapper = row.__mapper__
    return mapper.class_(**{attr.key: getattr(row, attr.key) for attr in mapper.column_attrs})
