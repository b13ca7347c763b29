"""The drivers' end-to-end tests share the e2e tests' reference ledger fixture."""

from __future__ import annotations

from tests.e2e.harness import ledger

__all__ = ["ledger"]
