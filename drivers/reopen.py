"""The wait before looking again for a device that is absent: a tenacity wait strategy, by attempt.

The serial and HID POS drivers look for a lost device again from their own
``reads()`` loop, between the reads they yield, so they ask the strategy they
configured for each wait here rather than through a tenacity retry loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenacity.wait import wait_base


@dataclass(frozen=True, slots=True)
class _Attempt:
    """tenacity's waits read only ``attempt_number`` of the retry state."""

    attempt_number: int


def reopen_wait(strategy: wait_base, attempt: int) -> float:
    """Seconds to wait before attempt ``attempt`` (counted from 1; lower counts as 1)."""
    return float(strategy(_Attempt(max(1, attempt))))  # type: ignore[arg-type]
