"""pki models (see certserver/db/models/__init__.py)."""

from certserver.db.base import Base  # noqa: F401
