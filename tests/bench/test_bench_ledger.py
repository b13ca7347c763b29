"""bench.ledger as a process, small: the JSON it promises, every run exactly once."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.harness import run_bench

KEYS = {"movements_per_s", "p99_batch_ms", "errors_5xx", "lost", "duplicated", "on_hand_ok"}


def test_bench_ledger_prints_the_table(tmp_path: Path) -> None:
    result, _ = run_bench(
        "ledger", "--movements", "128", "--batch", "8", "--agents", "1,64", workdir=tmp_path
    )
    assert set(result["runs"]) == {"sqlite_1proc", "pg_1proc", "pg_2proc"}
    for backend, by_agents in result["runs"].items():
        assert set(by_agents) == {"1", "64"}, backend
        for row in by_agents.values():
            assert set(row) >= KEYS
            assert (row["lost"], row["duplicated"], row["errors_5xx"]) == (0, 0, 0)
            assert row["on_hand_ok"] and row["movements_per_s"] > 0
    assert result["sqlite_1agent_per_s"] == result["runs"]["sqlite_1proc"]["1"]["movements_per_s"]
    assert (result["pg_64agents_lost"], result["pg_64agents_duplicated"]) == (0, 0)
    assert result["pg_64agents_5xx"] == 0
    assert "pg_16agents_per_s" in result  # None here: no run at 16
