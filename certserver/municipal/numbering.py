"""Certificate numbers: each issuer's own counter, advanced under a row lock."""

from __future__ import annotations

from sqlalchemy import bindparam, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from certserver.db.base import table_of
from certserver.db.models.transactions import CertificateCounter

# Advancing the counter and reading where it stands is one statement, which also locks the
# row until commit (PostgreSQL); the row is created only the first time an issuer numbers.
_COUNTERS = table_of(CertificateCounter)
_ADVANCE_COUNTER = (
    update(_COUNTERS)
    .where(_COUNTERS.c.issuer_code == bindparam("of_issuer"))
    .values(last_number=_COUNTERS.c.last_number + bindparam("advance_by"))
    .returning(_COUNTERS.c.last_number)
)


def allocate_numbers(session: Session, issuer_code: str, count: int) -> list[str]:
    """`count` fresh certificate numbers of the issuer, in the caller's transaction."""
    connection = session.connection()
    last = connection.execute(_ADVANCE_COUNTER, {"of_issuer": issuer_code, "advance_by": count}).scalar_one_or_none()
    if last is None:  # the issuer's first certificate: create its counter (a racing twin may too)
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        connection.execute(
            insert(_COUNTERS)
            .values(issuer_code=issuer_code, last_number=0)
            .on_conflict_do_nothing(index_elements=["issuer_code"])
        )
        last = connection.execute(_ADVANCE_COUNTER, {"of_issuer": issuer_code, "advance_by": count}).scalar_one()
    first = last - count + 1
    return [f"{issuer_code}-{n:08d}" for n in range(first, first + count)]
