"""Pieces the benchmarks share: item codes, percentiles, what machine this is, and the
exactly-once accounting of the reliability runs."""

from __future__ import annotations

import bisect
import itertools
import json
import math
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
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


def outbox_movement_ids(db: Path) -> dict[str, str]:
    """Every movement the agent stored, in any state: id -> state."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT id, state FROM movements").fetchall()
    finally:
        conn.close()
    return {mid: state for mid, state in rows}


def movements_report(stored: dict[str, str], journal: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The outbox's movements against the ledger's journal, by id.

    ``movements_missing``: stored (any state) but not at the ledger;
    ``movements_unknown``: at the ledger but not in the outbox; a movement
    the journal holds twice is counted in ``delivery_report``'s ``duplicated``.
    """
    at_ledger = {e["id"] for e in journal}
    states: dict[str, int] = {}
    for state in stored.values():
        states[state] = states.get(state, 0) + 1
    return {
        "movements_stored": len(stored),
        "movements_by_state": dict(sorted(states.items())),
        "movements_missing": len(set(stored) - at_ledger),
        "movements_unknown": len(at_ledger - set(stored)),
    }


def uuid7_time(uid: str) -> float:
    """The Unix time (seconds) a UUIDv7 was made at: its first 48 bits are milliseconds."""
    return int(uid.replace("-", "")[:12], 16) / 1000


def portal_report(
    outbox: Path,
    journal: Sequence[dict[str, Any]],
    station: str,
    kills_at: Sequence[float] = (),
) -> dict[str, Any]:
    """A portal's movements at the ledger, and whether any crossing was counted twice.

    ``portal_shared_reads``: movements of a tag that share a read (one pass in
    two movements); ``portal_repeats``: a tag moved the same way twice in a row
    (by seq, the order the portal decided them). Within ``dedup_ms`` and with
    no crossing back between, the second is a decided crossing counted again.
    ``portal_decided_after_a_kill``: movements whose pass ended (its last read,
    ``observed_at``) before one of ``kills_at`` (Unix times) and that were
    decided (their UUIDv7 id) after it: passes a restarted agent rebuilt.
    """
    by_epc: dict[str, list[dict[str, Any]]] = {}
    kinds: dict[str, int] = {}
    kills = sorted(kills_at)
    rebuilt = 0
    for entry in journal:
        if entry.get("station") != station:
            continue
        epc = entry.get("item", {}).get("epc")
        by_epc.setdefault(str(epc), []).append(entry)
        kinds[entry["kind"]] = kinds.get(entry["kind"], 0) + 1
        last_read = datetime.fromisoformat(entry["observed_at"]).timestamp()
        k = bisect.bisect_right(kills, last_read)
        rebuilt += k < len(kills) and kills[k] < uuid7_time(entry["id"])
    shared = repeats = 0
    for moves in by_epc.values():
        moves.sort(key=lambda e: e["seq"])
        seen: set[str] = set()
        for move in moves:
            ids = set(move.get("evidence", {}).get("read_ids", []))
            shared += bool(ids & seen)
            seen |= ids
        repeats += sum(a["kind"] == b["kind"] for a, b in itertools.pairwise(moves))
    conn = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True)
    try:
        tag_reads, no_outcome = conn.execute(
            "SELECT count(*), count(*) - count(outcome) FROM reads WHERE kind = 'tag'"
        ).fetchone()
    finally:
        conn.close()
    return {
        "portal_movements": sum(kinds.values()),
        "portal_movements_by_kind": dict(sorted(kinds.items())),
        "portal_tags_moved": len(by_epc),
        "portal_decided_after_a_kill": rebuilt,
        "portal_shared_reads": shared,
        "portal_repeats": repeats,
        "tag_reads": int(tag_reads),
        "tag_reads_without_outcome": int(no_outcome),
    }
