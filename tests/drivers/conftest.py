"""The drivers' end-to-end tests share the e2e tests' fixtures: the reference ledger, and
the daemon on the LLRP reader emulator."""

from __future__ import annotations

from tests.e2e.harness import ledger, llrp_agent

__all__ = ["ledger", "llrp_agent"]
