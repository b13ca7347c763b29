"""Pieces both benchmarks use: item codes, percentiles, what machine this is."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


def gtin14(body: str) -> str:
    """13 digits plus their GS1 check digit."""
    total = sum(int(d) * (3 if k % 2 == 0 else 1) for k, d in enumerate(reversed(body)))
    return body + str(-total % 10)


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


# ---- exactly-once accounting (bench.torture, bench.outage, tests/reliability) -------------


def acknowledged_reads(ack_log: Path) -> list[str]:
    """Read ids the simulated scanner gave a good beep for, from its ``ack_log``.

    A last line cut by a kill -9 is skipped: its beep was never complete.
    """
    if not ack_log.exists():
        return []
    out = []
    for line in ack_log.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("kind") == "good":
            out.append(rec["read_id"])
    return out


def ledger_journal(db: Path, agent: str) -> list[dict[str, Any]]:
    """The agent's own journal entries (not the ledger's adjusts), in journal order."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT payload FROM journal WHERE agent = ? AND source = 'agent' ORDER BY pos",
            (agent,),
        ).fetchall()
    finally:
        conn.close()
    return [json.loads(payload) for (payload,) in rows]


def delivery_report(
    journal: Sequence[dict[str, Any]], acknowledged: Iterable[str]
) -> dict[str, int]:
    """Compare the ledger's journal with what the agent promised.

    ``lost``: acknowledged reads that no movement carries; ``duplicated``: movement
    ids, or read ids, the journal holds more than once; ``seq_gaps``: numbers
    missing or repeated in the agent's gapless seq (0 when 1..n exactly).
    """
    ids = [e["id"] for e in journal]
    reads = [rid for e in journal for rid in e.get("evidence", {}).get("read_ids", [])]
    seqs = sorted(e["seq"] for e in journal)
    expected = set(range(1, len(seqs) + 1))
    acked = set(acknowledged)
    return {
        "acknowledged": len(acked),
        "delivered": len(journal),
        "lost": len(acked - set(reads)),
        "duplicated": (len(ids) - len(set(ids))) + (len(reads) - len(set(reads))),
        "seq_gaps": len(expected ^ set(seqs)) + (len(seqs) - len(set(seqs))),
    }


def integrity(db: Path) -> str:
    """``PRAGMA integrity_check`` of a database file: "ok", or what is wrong."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()
    return "; ".join(str(r[0]) for r in rows[:5])
