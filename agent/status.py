"""`edgetally status`: what the outbox holds and how sync is going, read from the file.

Reads through its own read-only connection: WAL readers never block the
running daemon's writer.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from agent.errors import OutboxError
from agent.outbox import connect, read_stats, read_sync_state


def outbox_status(path: Path, max_bytes: int, now: float | None = None) -> dict[str, Any]:
    if not path.exists():
        raise OutboxError(f"no outbox at {path}: has the agent run with this config?")
    now = time.time() if now is None else now
    try:
        conn = connect(path, readonly=True)
        try:
            stats = read_stats(conn, max_bytes)
            sync = read_sync_state(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise OutboxError(f"cannot read the outbox {path}: {exc}") from exc
    oldest = stats.oldest_pending_created_at
    return {
        "outbox": {
            "path": str(path),
            "pending": stats.pending,
            "delivered": stats.delivered,
            "rejected": stats.rejected,
            "reads": stats.reads,
            "oldest_pending_age_s": None if oldest is None else round(max(0.0, now - oldest), 3),
            "bytes": stats.used_bytes,
            "cap_bytes": stats.max_bytes,
            "next_seq": stats.next_seq,
        },
        "sync": {
            "last_success_at": sync.last_success_at,
            "last_success_age_s": None
            if sync.last_success_at is None
            else round(now - sync.last_success_at, 3),
            "last_error": sync.last_error,
            "last_error_at": sync.last_error_at,
            "attempts": sync.attempts,
            "next_attempt_at": sync.next_attempt_at,
        },
    }


def render(status: dict[str, Any]) -> str:
    o, s = status["outbox"], status["sync"]
    age = o["oldest_pending_age_s"]
    lines = [
        f"outbox    {o['path']}",
        f"  pending {o['pending']}   delivered {o['delivered']}   rejected {o['rejected']}"
        f"   reads {o['reads']}",
        f"  oldest pending  {'-' if age is None else f'{age:.1f}s'}",
        f"  size    {o['bytes'] / 2**20:.1f} MiB of {o['cap_bytes'] / 2**20:.0f} MiB",
        "sync",
        f"  last success    {_ago(s['last_success_age_s'])}",
        f"  last error      {s['last_error'] or '-'}",
        f"  failed attempts {s['attempts']}",
    ]
    return "\n".join(lines)


def _ago(age: float | None) -> str:
    return "never" if age is None else f"{age:.1f}s ago"
