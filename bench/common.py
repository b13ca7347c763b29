"""Pieces both benchmarks use: item codes, percentiles, what machine this is."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path


def gtin14(body: str) -> str:
    """13 digits plus their GS1 check digit."""
    total = sum(int(d) * (3 if k % 2 == 0 else 1) for k, d in enumerate(reversed(body)))
    return body + str(-total % 10)


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None
