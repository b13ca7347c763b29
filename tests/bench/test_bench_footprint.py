"""`python -m bench.footprint --quick` runs the agent for real and prints the footprint numbers.

No memory or timing targets here: the bars are checked by reading the
benchmark's output on a quiet machine, never in unit tests.
"""

from __future__ import annotations

import math
from pathlib import Path

from tests.e2e.harness import run_bench

QUICK_PENDING = 20_000
QUICK_LOAD_S = 5
QUICK_SCANS = 50
QUICK_TAGS = 275
POSITIVE = (
    "rss_mb",
    "startup_s",
    "scan_to_ledger_p50_ms",
    "scan_to_ledger_p99_ms",
    "read_to_ledger_p50_ms",
    "read_to_ledger_p99_ms",
    "rss_max_mb",
    "vm_hwm_mb",
    "rss_anon_mb",
    "rss_file_mb",
)


def number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def test_quick_run_prints_one_json_object(tmp_path: Path) -> None:
    result, stderr = run_bench("footprint", "--quick", workdir=tmp_path)
    for key in POSITIVE:
        assert number(result[key]) and result[key] > 0, (key, result[key])

    # memory: a process's RSS, sampled once a second through the load
    load = result["load"]
    assert len(load["rss_samples_mb"]) == QUICK_LOAD_S
    assert result["rss_mb"] == load["rss_samples_mb"][-1]
    assert result["rss_max_mb"] == max(load["rss_samples_mb"])
    assert 1 < result["rss_mb"] < 4096
    assert result["rss_max_mb"] <= result["vm_hwm_mb"]
    assert load["scanners"] == 4 and load["threads"] >= 1
    assert load["reads"] > 0 and load["reads_per_s"] > 0  # the scanners scanned

    # the one reader: the emulator's shelf, taken in by the agent through its llrp driver
    reader = result["reader"]
    assert reader["enabled"] is True and load["readers"] == 1
    assert reader["tags"] == QUICK_TAGS
    assert reader["reads"] > 0 and 0 < reader["reads_per_s"] <= reader["offered_reads_per_s"] * 1.5
    assert reader["first_tag_after_ready_s"] >= 0

    # only the drivers the config names are loaded: no evdev or xkbcommon (wedge) in the agent
    modules = load["extension_modules"]
    assert "_sqlite3" in modules  # what it does map is listed
    assert not [m for m in modules if m.startswith(("evdev/", "xkbcommon/"))], modules

    # the ledger was down: nothing left the outbox, and the new scans joined the backlog
    assert isinstance(result["pending"], int)
    assert result["pending"] >= QUICK_PENDING
    assert result["prefill"]["movements"] == QUICK_PENDING
    assert load["agent_events"].get("ready") == 1

    assert result["startup_method"] in ("sd_notify", "log_line")
    assert result["startup_s"] < 600

    # latency: every scan reached the ledger; percentiles in order and under a minute
    assert result["latency"]["delivered"] == QUICK_SCANS
    p50, p99 = result["scan_to_ledger_p50_ms"], result["scan_to_ledger_p99_ms"]
    assert p50 <= p99 <= result["scan_to_ledger_max_ms"] < 60_000

    assert result["machine"]["sqlite_version"] and result["machine"]["python"]
    assert "bench: phase 3" in stderr  # progress goes to stderr
    assert list(tmp_path.iterdir()) == []  # the temp dir is cleaned up
