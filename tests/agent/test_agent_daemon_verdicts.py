"""Every pass a portal closed is counted by its verdict, and each that moved nothing is
logged at debug with why (issue 15): what the daemon does with the rules' ticks."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_agent_rules_portal_clock import READER_T0_US, Door, walk_in

from agent.config import load_config
from agent.daemon import Daemon

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def debug_lines() -> Iterator[list[logging.LogRecord]]:
    """The daemon's log records at debug (a handler of its own: ``edgetally`` may not
    propagate to caplog's)."""
    got: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            got.append(record)

    logger = logging.getLogger("edgetally.daemon")
    handler, level = Keep(logging.DEBUG), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield got
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_passes_are_counted_by_verdict_and_those_that_moved_nothing_logged_with_why(
    debug_lines: list[logging.LogRecord],
) -> None:
    door = Door()
    door.feed(*[door.read(1, 0.1 * i) for i in range(8)])  # outside only: a cross-read
    door.settle()
    door.feed(*walk_in(door, clock_us=READER_T0_US + 10_000_000))  # a crossing in
    door.settle()
    door.feed(*walk_in(door, clock_us=READER_T0_US + 20_000_000))  # the same way again
    door.settle()
    daemon = Daemon(load_config(ROOT / "config" / "portal.toml"), "token")
    daemon._verdicts(door.ticks)
    counted: Counter[str] = Counter()
    for metric in daemon.metrics.portal_passes.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                assert sample.labels["station"] == "door-7"
                counted[sample.labels["verdict"]] += int(sample.value)
    assert counted == {"too_few_reads": 1, "crossed_in": 1, "duplicate": 1}
    lines = [r for r in debug_lines if r.getMessage() == "portal_no_move"]
    assert len(lines) == 1  # a crossing and a duplicate moved (or were) a move: no line
    fields = lines[0].fields  # type: ignore[attr-defined]
    assert fields["station"] == "door-7" and fields["verdict"] == "too_few_reads"
    assert "too few reads" in fields["reason"] and "outside 8, inside 0" in fields["reason"]


def test_at_info_nothing_is_logged_for_a_pass(debug_lines: list[logging.LogRecord]) -> None:
    logging.getLogger("edgetally.daemon").setLevel(logging.INFO)
    door = Door()
    door.feed(*[door.read(1, 0.1 * i) for i in range(8)])
    door.settle()
    Daemon(load_config(ROOT / "config" / "portal.toml"), "token")._verdicts(door.ticks)
    assert [r for r in debug_lines if r.getMessage() == "portal_no_move"] == []
