"""`python -m bench.guard --quick` judges random codes and prints both rates of the guard."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.harness import run_bench


def test_quick_run_prints_false_flags_and_catches(tmp_path: Path) -> None:
    result, stderr = run_bench("guard", "--quick", workdir=tmp_path)
    assert result["false_flag_rate"] == result["valid"]["gtin_serial20"]["flagged"]
    assert result["false_flag_rate"] < result["false_flag_bar"] == 0.001
    assert set(result["lost"]) == {
        "lot_then_serial",
        "serial_then_lot",
        "lot_then_expiry",
        "expiry_lot_then_serial20",
    }
    for name, lost in result["lost"].items():
        assert 0.8 < lost["caught"] <= 1.0, name
    assert result["lost"]["lot_then_expiry"]["caught"] == 1.0  # a valid date: always
    assert "bench.guard: valid gtin_serial20" in stderr
    assert list(tmp_path.iterdir()) == []
