"""`python -m bench.outage` in a tiny configuration prints its JSON and loses nothing.

No rate targets here: the ratio bar is read from a full run on a quiet machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import run_bench

KEYS = (
    "buffered",
    "outbox_mb",
    "drain_s",
    "drain_per_s",
    "ledger_ceiling_per_s",
    "ratio",
    "lost",
    "duplicated",
)


def quotient(num: float, den: float) -> object:
    """The bench divides its unrounded rates and prints each rate to 0.1/s: the printed
    ratio matches the printed rates' quotient to within that rounding, not exactly
    (CI once saw 9.063 printed beside 11986.0 / 1322.6 = 9.0624)."""
    spread = 0.05 / den + num * 0.05 / (den * (den - 0.05))
    return pytest.approx(num / den, abs=0.0005 + spread)


def test_tiny_outage_prints_the_keys_and_loses_nothing(tmp_path: Path) -> None:
    result, stderr = run_bench("outage", "--movements", "1500", "--batch", "200", workdir=tmp_path)
    assert set(KEYS) <= set(result)
    assert result["buffered"] == result["delivered"] == 1500
    assert result["lost"] == result["duplicated"] == result["seq_gaps"] == 0
    for key in ("outbox_mb", "drain_s", "drain_per_s", "ledger_ceiling_per_s", "ratio"):
        assert isinstance(result[key], float) and result[key] > 0, key
    assert result["ratio"] == quotient(result["drain_per_s"], result["ledger_ceiling_per_s"])
    assert result["db_integrity"] == "ok"
    assert "bench.outage: ceiling" in stderr  # progress goes to stderr
    assert list(tmp_path.iterdir()) == []  # the temp dir is cleaned up


def test_tiny_outage_to_three_sinks_loses_and_duplicates_nothing_at_any(tmp_path: Path) -> None:
    """--sinks 3: the ledger, a real mosquitto (a subscriber process counting ids) and a
    second ledger, beside the single-sink drain of the same backlog."""
    result, stderr = run_bench(
        "outage", "--movements", "1200", "--batch", "100", "--sinks", "3", workdir=tmp_path
    )
    assert result["sinks"] == 3 and result["buffered"] == 1200
    assert set(result["per_sink"]) == {"ledger", "mqtt", "ledger2"}
    for name, sink in result["per_sink"].items():
        assert (sink["lost"], sink["duplicated"]) == (0, 0), name
        assert sink["drain_per_s"] > 0 and sink["drain_s"] > 0, name
        vs = result["per_sink_vs_single"][name]
        assert vs == quotient(sink["drain_per_s"], result["single_sink_drain_per_s"])
    assert result["single_sink_lost"] == result["single_sink_duplicated"] == 0
    assert result["lost"] == result["duplicated"] == 0
    assert "bench.outage: 3 sinks: ledger, mqtt, ledger2" in stderr
    assert list(tmp_path.iterdir()) == []
