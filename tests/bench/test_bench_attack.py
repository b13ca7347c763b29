"""bench.attack as a process, small: the JSON it promises, and every attack held."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.harness import run_bench


def test_bench_attack_prints_each_outcome_and_they_hold(tmp_path: Path) -> None:
    result, _ = run_bench("attack", "--batches", "5", "--batch", "5", workdir=tmp_path)
    flood = result["slow_client_flood"]
    assert result["nofile"] == 1024 and flood["flooded"]["flood_sockets"] == 1100
    for phase in ("quiet", "flooded"):
        assert set(flood[phase]) >= {"batches", "errors", "p50_ms", "p99_ms", "max_ms"}
    assert flood["flooded"]["errors"] == 0 and flood["flooded"]["flood_cut_by_ledger"] > 0
    assert not flood["ledger_ran_out_of_descriptors"] and flood["held"]
    big = result["oversized_evidence"]
    assert big["result"] == "rejected" and "movement.evidence" in big["reason"]
    cross = result["cross_agent_reads"]
    assert cross["read_other_journal"] == cross["read_all_stock"] == 403
    assert cross["refused"] and result["holds"]
