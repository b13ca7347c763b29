"""A movement's summary state once every configured sink has settled it.

Plain SQL on a connection inside the writer's transaction; shared by settling
(a sink's answers) and opening (a sink taken out of the config).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence


def finish_settled(
    conn: sqlite3.Connection, seqs: Sequence[int], sinks: Sequence[str], now: float
) -> int:
    """Mark ``seqs`` (each settled by every sink in ``sinks``) delivered, or rejected
    when a sink refused it, with each refusing sink's reason; how many changed."""
    if not seqs:
        return 0
    marks = ",".join("?" * len(sinks))
    reasons: dict[int, list[str]] = {}
    for seq, sink, reason in conn.execute(
        f"SELECT seq, sink, reason FROM deliveries WHERE seq BETWEEN ? AND ?"
        f" AND state = 'rejected' AND sink IN ({marks}) ORDER BY seq, sink",
        (min(seqs), max(seqs), *sinks),
    ):
        reasons.setdefault(seq, []).append(f"{sink}: {reason}")
    before = conn.total_changes
    conn.executemany(
        "UPDATE movements SET state = ?, settled_at = ?, last_error = ?"
        " WHERE seq = ? AND state = 'pending'",
        [
            ("rejected", now, "; ".join(reasons[s]), s)
            if s in reasons
            else ("delivered", now, None, s)
            for s in seqs
        ],
    )
    return conn.total_changes - before
