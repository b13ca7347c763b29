"""The tag model: which tags each antenna reads in a window of scenario time. Pure.

``timeline()`` is deterministic for a seed and independent of how the time is
cut into windows, so tests check it without sockets.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from drivers.llrp_emulator.scenario import Antenna, Scenario, TagGroup

_M64 = (1 << 64) - 1


def _mix(key: int) -> int:
    """splitmix64: a stateless hash, so any window of the timeline gives the same reads."""
    z = (key + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def _unit(key: int) -> float:
    return _mix(key) / 2.0**64


@dataclass(frozen=True, slots=True)
class Observation:
    """What a reader saw of one tag on one antenna in a window (the TagReportData content)."""

    epc: bytes
    antenna: int
    rssi: int  # peak, dBm
    first_seen_s: float
    last_seen_s: float
    count: int


@dataclass(frozen=True, slots=True)
class _Tag:
    epc: bytes
    group: TagGroup
    key: int
    x_offset: float
    lateral: float
    gain_db: float
    x_home: float


def _tags(scenario: Scenario) -> Iterator[_Tag]:
    by_group: dict[str, list[float]] = {}
    for a in scenario.antennas:
        by_group.setdefault(a.group, []).append(a.x)
    for gi, group in enumerate(scenario.tags):
        home = sum(by_group[group.near]) / len(by_group[group.near]) if group.near else 0.0
        for ti, epc in enumerate(group.epcs):
            key = _mix(scenario.seed * 1_000_003 + gi * 7_919 + ti)
            yield _Tag(
                epc,
                group,
                key,
                (_unit(key ^ 1) - 0.5) * group.spread_m,
                group.lateral_m * (0.8 + 0.4 * _unit(key ^ 2)),
                (_unit(key ^ 3) + _unit(key ^ 4) + _unit(key ^ 5) - 1.5) * 3.0,  # ≈ N(0, 1.5 dB)
                home + (_unit(key ^ 6) - 0.5) * min(group.spread_m, 0.5),
            )


def _span(tag: _Tag) -> tuple[float, float]:
    """When the tag can be read at all (scenario seconds)."""
    g = tag.group
    if g.motion == "pass":
        lead = (tag.x_offset + g.spread_m / 2) / g.speed_mps
        return g.start_s + lead, g.start_s + lead + g.path_m / g.speed_mps
    if g.motion == "leave":
        leave_at = g.start_s + (g.duration_s or 0.0)
        return g.start_s, leave_at + 20.0 / g.speed_mps
    return g.start_s, math.inf if g.duration_s is None else g.start_s + g.duration_s


def _where(tag: _Tag, t: float, span_start: float) -> tuple[float, float]:
    """(x, lateral distance) of a tag at scenario time t."""
    g = tag.group
    if g.motion == "pass":
        travelled = (t - span_start) * g.speed_mps
        if g.direction == "in":
            return -g.path_m / 2 + travelled, tag.lateral
        return g.path_m / 2 - travelled, tag.lateral
    if g.motion == "leave":
        leave_at = g.start_s + (g.duration_s or 0.0)
        return tag.x_home, tag.lateral + max(0.0, t - leave_at) * g.speed_mps
    return tag.x_home, tag.lateral


def _rssi(scenario: Scenario, tag: _Tag, antenna: Antenna, x: float, lateral: float) -> float:
    """Backscatter falls 40 dB per decade of distance (1/d⁴); a wall or door plane adds door_db."""
    d = math.hypot(x - antenna.x, lateral)
    loss = 40.0 * math.log10(max(d, 0.05) / tag.group.lateral_m)
    if x * antenna.x < 0:
        loss += scenario.door_db
    return tag.group.rssi_peak_dbm + tag.gain_db - loss


def _p_read(scenario: Scenario, rssi: float) -> float:
    z = (rssi - scenario.sensitivity_dbm) / 2.0
    return 1.0 / (1.0 + math.exp(-z)) if z > -40 else 0.0


def timeline(
    scenario: Scenario, t0: float, t1: float, antennas: frozenset[int] | None = None
) -> list[Observation]:
    """Every (tag, antenna) read in scenario time [t0, t1), aggregated as a reader reports them.

    Each tag has one read attempt per ``1/rate`` seconds per antenna (at its own
    phase); an attempt succeeds with a probability that rises from 0 to 1 around
    the sensitivity. Every draw is a hash of (seed, tag, antenna, slot), so the
    result does not depend on how [t0, t1) is split.
    """
    out: list[Observation] = []
    if t1 <= t0:
        return out
    ants = [a for a in scenario.antennas if antennas is None or a.id in antennas]
    for tag in _tags(scenario):
        rate = tag.group.read_rate_hz if tag.group.read_rate_hz is not None else scenario.rate
        lo, hi = _span(tag)
        w0, w1 = max(t0, lo), min(t1, hi)
        if rate <= 0 or w1 <= w0:
            continue
        for antenna in ants:
            if _p_read(scenario, _best_rssi(scenario, tag, antenna, w0, w1, lo)) < 1e-6:
                continue
            akey = _mix(tag.key ^ (antenna.id * 0x9E3779B1))
            phase = _unit(akey)
            k = math.ceil(w0 * rate - phase)
            first = last = -1.0
            peak = -1000.0
            count = 0
            while (t := (k + phase) / rate) < w1:
                if t >= w0:
                    x, lateral = _where(tag, t, lo)
                    rssi = _rssi(scenario, tag, antenna, x, lateral)
                    rssi += (_unit(akey ^ (k * 0x632BE5AB)) - 0.5) * 4.0  # ±2 dB of fading
                    if _unit(akey + k) < _p_read(scenario, rssi):
                        if count == 0:
                            first = t
                        last, count, peak = t, count + 1, max(peak, rssi)
                k += 1
            if count:
                out.append(
                    Observation(
                        tag.epc, antenna.id, max(-128, min(127, round(peak))), first, last, count
                    )
                )
    out.sort(key=lambda o: (o.first_seen_s, o.antenna, o.epc))
    return out


def _best_rssi(
    scenario: Scenario, tag: _Tag, antenna: Antenna, w0: float, w1: float, lo: float
) -> float:
    """An upper bound of the RSSI in the window (motion is monotonic), to skip silent pairs."""
    (xa, la), (xb, lb) = _where(tag, w0, lo), _where(tag, w1, lo)
    x = min(max(antenna.x, min(xa, xb)), max(xa, xb))
    best = _rssi(scenario, tag, antenna, x, min(la, lb))
    if x * antenna.x < 0 and (xa * antenna.x >= 0 or xb * antenna.x >= 0):
        best += scenario.door_db
    return best + 2.0
