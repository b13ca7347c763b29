"""A beam sensor across the door (x = 0) on a GPI port: broken while a passing pallet is in it.

A scenario with ``beam_gpi = N`` reports the beam on GPI port N: high while
any tag of a ``pass`` group is within ``BEAM_HALF_M`` of the door plane (the
pallet's load crosses the light), low otherwise. Tags parked by the door or on
a shelf never break it, which is what a beam gate is for. Pure: the session
asks at a scenario time and sends a GPIEvent when the answer changes.
"""

from __future__ import annotations

import struct

from drivers import llrp_frames as f
from drivers.llrp_emulator.scenario import Scenario
from drivers.llrp_emulator.tagmodel import _span, _tags, _where

BEAM_HALF_M = 0.15  # half the depth of the light curtain across the door
GPI_EVENT = 248  # LLRP GPIEvent parameter


class Beam:
    """The passing tags' time windows at the door, found once per scenario."""

    def __init__(self, scenario: Scenario) -> None:
        self.port = scenario.beam_gpi
        self._windows: list[tuple[float, float]] = []
        for tag in _tags(scenario):
            if tag.group.motion != "pass":
                continue
            start, end = _span(tag)
            # x moves at speed_mps from -path/2 (in) or +path/2 (out): at the door halfway
            half = tag.group.path_m / 2
            at = start + half / tag.group.speed_mps
            assert abs(_where(tag, at, start)[0]) < 1e-6
            dt = BEAM_HALF_M / tag.group.speed_mps
            self._windows.append((max(start, at - dt), min(end, at + dt)))
        self._windows.sort()
        merged: list[tuple[float, float]] = []
        for a, b in self._windows:
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
            else:
                merged.append((a, b))
        self._windows = merged  # disjoint, in time order

    def broken(self, scene_s: float) -> bool:
        return any(a <= scene_s <= b for a, b in self._windows)

    def changes(self, s0: float, s1: float) -> list[bool]:
        """The beam's changes in (s0, s1], in order (True: broken), so a session that
        looks late (a stalled loop) still reports a beam that was broken and cleared."""
        out: list[bool] = []
        for a, b in self._windows:
            if s0 < a <= s1:
                out.append(True)
            if s0 < b <= s1:
                out.append(False)
        return out


def gpi_event(port: int, high: bool) -> f.Parameter:
    """A GPIEvent for a READER_EVENT_NOTIFICATION (LLRP 1.1 §16.2.7.6.1)."""
    return f.Tlv(GPI_EVENT, struct.pack("!HB", port, 0x80 if high else 0))
