"""The reference central ledger: journal + on-hand, over the movements protocol."""

from ledger.app import create_app
from ledger.schema import LedgerError
from ledger.server import serve
from ledger.store import LedgerStore, SqlStore, open_store

__all__ = ["LedgerError", "LedgerStore", "SqlStore", "create_app", "open_store", "serve"]
