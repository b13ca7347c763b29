"""`python -m bench.outbox --quick` runs and prints the numbers the bars are read from.

No timing assertions here: the bars are checked by reading the benchmark's
output on a quiet machine, never in unit tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
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
    done = subprocess.run(
        [sys.executable, "-m", "bench.outbox", "--quick", "--dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # stdout holds the JSON and nothing else
    for key in KEYS:
        value = result[key]
        assert isinstance(value, int | float) and not isinstance(value, bool), key
        assert value > 0, key
    assert result["rounds"] == len(result["per_round"]["ratio"])
    assert result["machine"]["sqlite_version"]
    assert "bench.outbox: round" in done.stderr  # progress goes to stderr
    assert list(tmp_path.iterdir()) == []  # the temp dir is cleaned up
