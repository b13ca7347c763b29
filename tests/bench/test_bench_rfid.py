"""`python -m bench.rfid --quick` runs both sides against the emulator and prints the numbers.

No rate targets here: the bars are checked by reading the benchmark's output
on a quiet machine, never in unit tests. What is checked is that the run is
real: both sides counted reads, the pipeline stored every read and made
movements (a receiving station receives each tag once).
"""

from __future__ import annotations

import math
from pathlib import Path

from tests.e2e.harness import run_bench


def number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def test_quick_run_prints_one_json_object(tmp_path: Path) -> None:
    result, stderr = run_bench("rfid", "--quick", "--station", "receiving", workdir=tmp_path)
    for key in ("sllurp_decode_reads_per_s", "pipeline_reads_per_s", "ratio", "movements"):
        assert number(result[key]) and result[key] > 0, (key, result[key])
    bare, pipe = result["sllurp_decode_reads_per_s"], result["pipeline_reads_per_s"]
    assert math.isclose(result["ratio"], pipe / bare, rel_tol=0.01, abs_tol=0.001)
    # 20 tags in the field: each received once, re-reads are duplicates
    assert result["tags_in_field"] == 20
    assert result["movements"] == 20
    # 100 entries a report, each (tag, antenna) 5 times: folded, one row per 5 tag reads;
    # the unfolded pipeline beside it stores a row per tag read. Both store all 5,000.
    assert result["rows_per_tag_read"] == 0.2
    assert result["rows_per_tag_read_unfolded"] == 1.0
    assert number(result["pipeline_unfolded_reads_per_s"])
    assert result["station"] == "receiving"
    assert result["rounds"] == len(result["per_round"]["pipeline_reads_per_s"]) == 1
    assert result["machine"]["versions"]["sllurp"]
    assert "bench.rfid: round 1/1" in stderr  # progress goes to stderr
    assert list(tmp_path.iterdir()) == []  # the temp dir is cleaned up
