from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from harness import ledger, ledger_down, llrp_agent

__all__ = ["ledger", "ledger_down", "llrp_agent"]  # the fixtures the e2e tests use
