"""`python -m bench.valuation` in a tiny configuration prints its JSON, both arms applied
every movement, and the valued arm's books hold (the bench asserts the inventory identity).

No rate targets here: the ratio bar is read from a full run on a quiet machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import run_bench


def test_tiny_valuation_bench_prints_both_arms(tmp_path: Path) -> None:
    result, stderr = run_bench(
        "valuation", "--movements", "400", "--batch", "50", "--rounds", "2", workdir=tmp_path
    )
    assert result["movements"] == 400 and result["method"] == "fifo"
    for key in ("movements_per_s_quantity_only", "movements_per_s_valued"):
        assert result[key] > 0
    assert len(result["rounds_valued"]) == len(result["rounds_quantity_only"]) == 2
    q, v = result["movements_per_s_quantity_only"], result["movements_per_s_valued"]
    assert result["ratio"] == pytest.approx(v / q, abs=0.002)  # of the printed rates
    qc, vc = result["cpu_us_per_movement_quantity_only"], result["cpu_us_per_movement_valued"]
    assert qc > 0 and vc > 0 and result["ratio_cpu"] == pytest.approx(qc / vc, abs=0.002)
    assert set(result["backends"]) == {"sqlite"}
    assert "bench.valuation: round 2/2" in stderr  # progress goes to stderr
    assert list(tmp_path.iterdir()) == []  # the temp dir is cleaned up
