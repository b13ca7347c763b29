"""Double reads: the same data from the same device within ``debounce_ms`` is one read.

Timed by the read's monotonic clock (``mono_ns`` within one ``boot_id``), never
the wall clock, so an NTP step cannot merge or split reads, and a replay of
recorded reads debounces exactly as the live run did. The window slides: a
scanner re-reading a code held under it stays one read; a new trigger pull
after the window is a new unit.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.model import Read


@dataclass(slots=True)
class _Last:
    boot_id: str
    data: bytes
    mono_ns: int


class Debouncer:
    """Per device, the last read's data and time; memory bounded by the number of devices."""

    def __init__(self) -> None:
        self._last: dict[str, _Last] = {}

    def double(self, device: str, read: Read, window_ms: int) -> bool:
        if window_ms <= 0:  # off for this device's station (the default): nothing to keep
            return False
        last = self._last.get(device)
        self._last[device] = _Last(read.boot_id, read.data, read.mono_ns)
        if last is None:
            return False
        return (
            last.boot_id == read.boot_id
            and last.data == read.data
            and 0 <= read.mono_ns - last.mono_ns < window_ms * 1_000_000
        )
