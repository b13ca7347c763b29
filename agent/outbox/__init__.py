"""The durable local store of reads and movements (DESIGN §4)."""

from agent.outbox.store import (
    Commit,
    Outbox,
    OutboxStats,
    Pending,
    Stored,
    SyncState,
    connect,
    read_stats,
    read_sync_state,
)

__all__ = [
    "Commit",
    "Outbox",
    "OutboxStats",
    "Pending",
    "Stored",
    "SyncState",
    "connect",
    "read_stats",
    "read_sync_state",
]
