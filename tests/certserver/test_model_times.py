"""Every moment a table keeps comes back as an aware UTC datetime on SQLite and PostgreSQL
alike: SQLite has no time zones and hands back naive values, which an answer then published
without its offset (the OpenAPI fuzzer found `expires_at` that way)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import DateTime

from certserver.db.base import UtcDateTime
from certserver.db.models import Base


def test_every_timestamp_column_is_an_aware_utc_column() -> None:
    naive = [
        f"{table.name}.{column.name}"
        for table in Base.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, DateTime) and not isinstance(column.type, UtcDateTime)
    ]
    timestamps = [
        column
        for table in Base.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, UtcDateTime)
    ]
    assert naive == []
    assert len(timestamps) >= 10  # the transactions' and the cards' times are among them


def test_a_utc_column_reads_back_aware_and_refuses_a_naive_moment() -> None:
    column = UtcDateTime()
    moment = dt.datetime(2026, 12, 6, 1, 2, 3, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    stored = column.process_bind_param(moment, _Dialect("sqlite"))
    assert stored == dt.datetime(2026, 12, 5, 16, 2, 3)  # naive UTC text, ordered as text
    assert column.process_result_value(stored, _Dialect("sqlite")) == moment
    with pytest.raises(ValueError, match="naive"):
        column.process_bind_param(dt.datetime(2026, 12, 6), _Dialect("sqlite"))


class _Dialect:
    def __init__(self, name: str) -> None:
        self.name = name
