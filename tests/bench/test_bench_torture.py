"""`python -m bench.torture` with a few kills prints its JSON: nothing lost, nothing twice.

The bounded torture proper (more kills) is tests/reliability/test_reliability_torture.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.harness import run_bench

KEYS = ("kills", "acknowledged", "delivered", "lost", "duplicated", "db_integrity")
PORTAL_KEYS = (
    "portal_movements",
    "portal_repeats",
    "portal_shared_reads",
    "tag_reads",
    "kills_while_tags_streaming",
    "kills_in_commit_while_tags_streaming",
)


def torture(tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    return run_bench("torture", *args, workdir=tmp_path)  # stdout holds the JSON and nothing else


def test_three_kills_print_the_keys_and_lose_nothing(tmp_path: Path) -> None:
    result, stderr = torture(tmp_path, "--kills", "3", "--seed", "3", "--max-run-s", "0.3")
    assert set(KEYS) <= set(result) and set(PORTAL_KEYS) <= set(result)
    assert result["kills"] == 3 and result["seed"] == 3 and result["portal"] is True
    assert result["acknowledged"] > 0
    assert result["delivered"] >= result["acknowledged"]  # stored, then killed before the beep
    assert result["lost"] == result["duplicated"] == result["seq_gaps"] == 0
    assert result["movements_missing"] == result["movements_unknown"] == 0
    assert result["db_integrity"] == result["ledger_integrity"] == "ok"
    assert result["tag_reads"] > 0  # the emulator's tags reached the outbox
    assert result["portal_repeats"] == result["portal_shared_reads"] == 0
    assert result["kills_in_commit_while_tags_streaming"] <= result["kills_in_commit"]
    assert "bench.torture: kill 3/3" in stderr  # progress goes to stderr
    assert list(tmp_path.iterdir()) == []  # the temp dir is cleaned up


def test_without_the_portal_the_load_is_the_scanners_alone(tmp_path: Path) -> None:
    result, _ = torture(tmp_path, "--kills", "1", "--seed", "1", "--no-portal")
    assert result["portal"] is False
    assert not set(PORTAL_KEYS) & set(result)
    assert result["acknowledged"] > 0 and result["lost"] == result["duplicated"] == 0
