"""`python -m bench.outbox --quick` runs and prints the numbers the bars are read from.

No timing assertions here: the bars are checked by reading the benchmark's
output on a quiet machine, never in unit tests.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.harness import run_bench

KEYS = (
    "edgetally_enqueue_per_s",
    "persistqueue_put_ack_per_s",
    "ratio",
    "single_commit_p99_ms",
    "sqlite_floor_p99_ms",
    "single_commit_ratio",
    "single_commit_p50_ms",
    "sqlite_floor_p50_ms",
)


def test_quick_run_prints_one_json_object(tmp_path: Path) -> None:
    result, stderr = run_bench("outbox", "--quick", workdir=tmp_path, timeout=120)
    for key in KEYS:
        value = result[key]
        assert isinstance(value, int | float) and not isinstance(value, bool), key
        assert value > 0, key
    assert result["rounds"] == len(result["per_round"]["ratio"])
    assert result["machine"]["sqlite_version"]
    assert "bench.outbox: round" in stderr  # progress goes to stderr
    assert list(tmp_path.iterdir()) == []  # the temp dir is cleaned up
