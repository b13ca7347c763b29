"""The ledger's storage: one interface, two backends.

`LedgerStore` is SQLite (one file, the embedded default); `PgStore` is
PostgreSQL for a site with many agents and several ledger processes.
`open_store` picks by what ``--db`` names.
"""

from ledger.schema import LedgerError
from ledger.store.base import (
    AGENT,
    READER,
    AgentInfo,
    LedgerUnavailable,
    Principal,
    SqlStore,
    TokenInfo,
)
from ledger.store.domain import (
    CONFLICT_REASON,
    FOREIGN_REASON,
    MAX_INT,
    MAX_PAGE,
    MAX_PAGE_BYTES,
    VARIANCE_NS,
)
from ledger.store.open import is_postgres_url, open_store
from ledger.store.sqlite import LedgerStore

__all__ = [
    "AGENT",
    "CONFLICT_REASON",
    "FOREIGN_REASON",
    "MAX_INT",
    "MAX_PAGE",
    "MAX_PAGE_BYTES",
    "READER",
    "VARIANCE_NS",
    "AgentInfo",
    "LedgerError",
    "LedgerStore",
    "LedgerUnavailable",
    "Principal",
    "SqlStore",
    "TokenInfo",
    "is_postgres_url",
    "open_store",
]
