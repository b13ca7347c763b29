"""`bench.footprint --dock-page`: a tablet keeps the dock page open through the load and
the scan-to-ledger phases, and the run reports what it fetched."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.harness import run_bench


def test_the_dock_page_stays_open_through_both_phases(tmp_path: Path) -> None:
    result, _ = run_bench(
        "footprint", "--quick", "--no-reader", "--pending", "2000", "--dock-page", workdir=tmp_path
    )
    assert result["dock_page_open"] is True
    for phase in ("dock_page_load", "dock_page_latency"):
        page = result[phase]
        assert page["errors"] == 0, page["first_error"]
        assert page["requests"] >= 2 and page["page_bytes"] > 1000
        assert page["board_bytes_median"] > 500 and page["answer_ms_median"] > 0
    # the load phase polls about once a second for --load-s (5 in --quick)
    assert result["dock_page_load"]["requests"] >= 4
