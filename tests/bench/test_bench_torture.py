"""`python -m bench.torture` with a few kills prints its JSON: nothing lost, nothing twice.

The bounded torture proper (more kills) is tests/reliability/test_reliability_torture.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KEYS = ("kills", "acknowledged", "delivered", "lost", "duplicated", "db_integrity")


def test_three_kills_print_the_keys_and_lose_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            *("-m", "bench.torture", "--kills", "3", "--seed", "3"),
            *("--max-run-s", "0.3", "--dir", str(tmp_path)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # stdout holds the JSON and nothing else
    assert set(KEYS) <= set(result)
    assert result["kills"] == 3 and result["seed"] == 3
    assert result["acknowledged"] > 0
    assert result["delivered"] >= result["acknowledged"]  # stored, then killed before the beep
    assert result["lost"] == result["duplicated"] == result["seq_gaps"] == 0
    assert result["db_integrity"] == result["ledger_integrity"] == "ok"
    assert "bench.torture: kill 3/3" in done.stderr  # progress goes to stderr
    assert list(tmp_path.iterdir()) == []  # the temp dir is cleaned up
