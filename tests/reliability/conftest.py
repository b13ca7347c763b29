"""The reliability tests' reference ledger: a real `edgetally ledger serve` process."""

from __future__ import annotations

from tests.e2e.harness import ledger, ledger_down

__all__ = ["ledger", "ledger_down"]
