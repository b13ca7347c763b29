"""The last scans of each station, for the dock page: a few per station, bounded.

The daemon adds one entry per barcode read once its fate is on disk (and per
tag read that moved something: a portal pass is thousands of reads, the page
shows the moves). Entries are small frozen records; nothing here touches disk.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from agent.model import Movement

PER_STATION = 12
UNBOUND = "(no station)"


@dataclass(frozen=True, slots=True)
class Scan:
    at: float  # wall clock, seconds
    station: str
    device: str
    data: str
    outcome: str  # good | double | bad | refused
    reason: str | None
    moved: str | None  # "receive 1 × 09506000134352 (asn expected:2;received:1)"


class RecentScans:
    """Per station, the newest ``PER_STATION`` scans, newest first."""

    def __init__(self, per_station: int = PER_STATION) -> None:
        self._per = per_station
        self._by_station: dict[str, deque[Scan]] = {}

    def add(self, scan: Scan) -> None:
        ring = self._by_station.get(scan.station)
        if ring is None:
            ring = self._by_station[scan.station] = deque(maxlen=self._per)
        ring.appendleft(scan)

    def of(self, station: str) -> list[Scan]:
        return list(self._by_station.get(station, ()))


def scan_of(
    at: float,
    station: str | None,
    device: str,
    data: bytes,
    outcome: str,
    reason: str | None,
    movements: Sequence[Movement],
) -> Scan:
    """One read's line on the dock page: what was scanned, what became of it."""
    moved = None
    if movements:
        first = movements[0]
        moved = f"{first.kind} {first.qty} × {first.item.key() or '?'}"
        asn = first.ref.get("asn") if first.ref else None
        if asn:
            moved += f" (ASN {asn.replace(';', ', ').replace(':', ' ')})"
        if len(movements) > 1:
            moved += f" and {len(movements) - 1} more"
    text = data.decode("utf-8", "backslashreplace")
    return Scan(at, station or UNBOUND, device, text[:80], outcome, reason, moved)
