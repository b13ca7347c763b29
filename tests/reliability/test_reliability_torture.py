"""Bounded kill -9 torture (DESIGN §8): a real agent under load, SIGKILLed 16 times.

``bench.torture`` does the work (the full run is ``--kills 200``); here it runs
with fewer kills and the promise is asserted: every read that got a good beep
is in exactly one movement at the ledger, seq has no gap, and the outbox
passes ``PRAGMA integrity_check`` after every kill.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sixteen_random_kills_lose_nothing_and_apply_nothing_twice(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            *("-m", "bench.torture", "--kills", "16", "--max-run-s", "0.5"),
            *("--dir", str(tmp_path)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    seed = result["seed"]  # printed, so a failure can be replayed with --seed
    assert result["kills"] == 16
    assert result["acknowledged"] >= 100, seed  # it was under load when killed
    assert result["lost"] == 0, seed
    assert result["duplicated"] == 0, seed
    assert result["seq_gaps"] == 0, seed
    assert result["delivered"] >= result["acknowledged"], seed
    assert result["db_integrity"] == "ok", seed
    assert result["ledger_integrity"] == "ok", seed
