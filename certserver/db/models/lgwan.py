"""The municipality server's record of the centre's calls over the LGWAN link.

Each order call is numbered and rendered once: its request id is the key, the answer (the
PDFs, which name people: the municipality's own registry may hold them) is kept so that a
repeated delivery gets the same certificates, and it is erased when the centre reports the
outcome or when the record ages out.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from certserver.db.base import Base, UtcDateTime


class LgwanOrder(Base):
    __tablename__ = "lgwan_orders"

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    municipality_code: Mapped[str] = mapped_column(String(6), index=True)
    call_sha256: Mapped[str] = mapped_column(String(64))  # the call, so a different one under the id is refused
    card_serial: Mapped[str] = mapped_column(String(64))
    certificate_numbers: Mapped[str] = mapped_column(Text, default="")  # space-separated, kept after the outcome
    answer: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON; None while rendering or once settled
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)  # issued / withdrawn / partly / failed
    issued_numbers: Mapped[str] = mapped_column(Text, default="")  # space-separated: what the centre said printed
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    settled_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
