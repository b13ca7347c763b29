"""The ``flow`` log line: "is my data flowing?" answered from the logs at the default level.

A good read is logged only at debug (an RFID portal makes hundreds a second),
so every ``agent.log_flow_s`` the daemon logs one ``flow`` line at info with
what happened since the last one: reads by result, movements stored,
delivered and rejected, and the backlog. Nothing moved, nothing logged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Totals:
    """Running totals since start; ``FlowLog`` logs their differences."""

    reads: Mapping[str, int] = field(default_factory=dict)
    stored: int = 0
    delivered: int = 0
    rejected: int = 0
    pending: int = 0


class FlowLog:
    def __init__(self, start: Totals | None = None) -> None:
        self._last = start or Totals()

    def fields(self, now: Totals, last_delivery_age_s: float | None) -> dict[str, Any] | None:
        """The ``flow`` line's fields since the last call, or None when nothing moved."""
        last, self._last = self._last, now
        reads = Counter(now.reads)
        reads.subtract(last.reads)
        reads = +reads  # only what grew
        stored = now.stored - last.stored
        delivered = now.delivered - last.delivered
        rejected = now.rejected - last.rejected
        if not (reads or stored or delivered or rejected or now.pending != last.pending):
            return None
        return {
            "reads": dict(sorted(reads.items())),
            "stored": stored,
            "delivered": delivered,
            "rejected": rejected,
            "pending": now.pending,
            "last_delivery_age_s": last_delivery_age_s,
        }
