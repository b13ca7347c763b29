"""Charts as SVG drawn on the server: no chart library, no JavaScript, no CDN.

Two shapes are needed (a step line of stock over time, small bars of
movements per hour); a library would weigh more than both. The templates
draw the shapes these functions lay out.
"""

from __future__ import annotations

from dataclasses import dataclass

W, H, PAD = 640, 200, 28


@dataclass(frozen=True)
class Line:
    points: str  # SVG polyline points
    y_max: int
    y_min: int
    first: str
    last: str
    zero_y: float


def step_line(series: list[tuple[str, int]]) -> Line | None:
    """On hand after each movement, as a step line (on hand holds until the next one)."""
    if not series:
        return None
    values = [v for _, v in series]
    lo, hi = min(0, *values), max(1, *values)
    n = len(series)

    def x(i: int) -> float:
        return PAD + (W - 2 * PAD) * (i / max(1, n))

    def y(v: int) -> float:
        return H - PAD - (H - 2 * PAD) * ((v - lo) / (hi - lo))

    pts = [f"{x(0):.1f},{y(0):.1f}"]
    for i, v in enumerate(values):
        pts.append(f"{x(i):.1f},{y(v):.1f}")
        pts.append(f"{x(i + 1):.1f},{y(v):.1f}")
    return Line(" ".join(pts), hi, lo, series[0][0][:19], series[-1][0][:19], y(0))


@dataclass(frozen=True)
class Bars:
    station: str
    bars: list[tuple[float, float, float, int]]  # x, y, height, value
    peak: int
    width: float


def hour_bars(per_station: dict[str, list[int]], w: int = 300, h: int = 80) -> list[Bars]:
    out = []
    for station, counts in per_station.items():
        peak = max(1, *counts)
        width = w / len(counts)
        bars = [(i * width, h - h * c / peak, h * c / peak, c) for i, c in enumerate(counts)]
        out.append(Bars(station, bars, peak, width - 2))
    return out
