"""The ledger's site dashboard: server-rendered pages behind a login (issue 13)."""

from ledger.pages.views import routes

__all__ = ["routes"]
