"""All models, imported here so that `Base.metadata` knows every table.

One module per area: registry (municipalities, residents, 戸籍 ...), pki (card
certificates, revocations), transactions (kiosks, transactions, documents, audit log).
"""

from certserver.db.base import Base
from certserver.db.models import lgwan, pki, registry, transactions  # noqa: F401

__all__ = ["Base"]
