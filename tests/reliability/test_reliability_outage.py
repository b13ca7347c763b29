"""Bounded long outage: 20,000 movements buffered with the ledger down, drained on return.

``bench.outage`` does the work (the full run buffers 1,000,000 and also
measures the ledger's ceiling); here the ceiling phase is skipped and the
promise is asserted: every buffered movement reaches the ledger once, in seq
order, from a real agent process that was failing to sync when the ledger came
back.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.harness import run_bench


def test_20000_buffered_movements_drain_exactly_once(tmp_path: Path) -> None:
    result, stderr = run_bench("outage", "--movements", "20000", "--skip-ceiling", workdir=tmp_path)
    assert result["buffered"] == result["delivered"] == 20_000
    assert result["lost"] == 0
    assert result["duplicated"] == 0
    assert result["seq_gaps"] == 0
    assert result["db_integrity"] == "ok"
    assert result["ledger_ceiling_per_s"] is None and result["ratio"] is None  # skipped
    assert "agent is failing to sync" in stderr  # the ledger really was down first
