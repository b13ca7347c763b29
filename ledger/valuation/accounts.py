"""The chart of accounts valuation posts to, and which movement posts what.

| movement | debit | credit |
|---|---|---|
| receive | Inventory | GRNI |
| ship | COGS | Inventory |
| return (restock, quarantine, damaged) | Inventory | COGS |
| adjust out `damaged` (a damaged return written off) | Returns write-off | Inventory |
| adjust out (any other reason), count shortfall | Shrinkage | Inventory |
| adjust in, count surplus | Inventory | Shrinkage |
| transfer | Inventory @to | Inventory @from |

Inventory is one account with a location on each line, so a transfer is one
entry between two locations of it. ``variance`` takes the correction of a
provisional transfer-out (that stock moved on at the provisional cost).
Counts post through the variance adjust the ledger journals for them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class Accounts:
    inventory: str = "1300"
    grni: str = "2150"
    cogs: str = "5000"
    shrinkage: str = "5100"
    writeoff: str = "5200"
    variance: str = "5300"

    def names(self) -> dict[str, str]:
        """Account code -> its role, for reports."""
        return {getattr(self, f.name): f.name for f in fields(self)}
