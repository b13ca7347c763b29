"""The durable local store of reads and movements (DESIGN §4)."""

from agent.outbox.queries import (
    connect,
    read_sink_pending,
    read_stats,
    read_sync_state,
    recent_tag_reads,
)
from agent.outbox.rows import Commit, OutboxStats, Pending, Stored, SyncState
from agent.outbox.store import Outbox

__all__ = [
    "Commit",
    "Outbox",
    "OutboxStats",
    "Pending",
    "Stored",
    "SyncState",
    "connect",
    "read_sink_pending",
    "read_stats",
    "read_sync_state",
    "recent_tag_reads",
]
