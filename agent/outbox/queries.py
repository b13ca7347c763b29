"""Connections and read queries on the outbox file, for the daemon and for tools."""

from __future__ import annotations

import sqlite3
import urllib.parse
from pathlib import Path

from agent.errors import OutboxError
from agent.model import Read
from agent.outbox.rows import OutboxStats, SyncState, uuid7_floor

CACHE_KIB = 512  # page cache per connection (see connect)


def connect(path: str | Path, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the PRAGMAs every outbox connection needs, set explicitly."""
    if readonly:
        uri = f"file:{urllib.parse.quote(str(path))}?mode=ro"  # a ? or # in the path is data
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA foreign_keys = ON")
    # Sub-journals and sorts in memory: no writes to /var/tmp (an SD card, or
    # read-only under systemd's ProtectSystem=strict).
    conn.execute("PRAGMA temp_store = MEMORY")
    # 512 KiB of page cache, not SQLite's 2 MiB: the daemon keeps two connections
    # open and both fill their cache on a big outbox (DESIGN §8: RSS ≤ 60 MB with
    # 1,000,000 pending); the writer's hot pages, the right edges of the b-trees,
    # are a few dozen, and sync reads pending rows in order.
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    if not readonly:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise OutboxError(f"outbox {path}: cannot use WAL journal mode (got {mode!r})")
        # FULL explicitly: builds differ in their default, and NORMAL in WAL may
        # roll back the last commits on power loss.
        conn.execute("PRAGMA synchronous = FULL")
    return conn


def next_seq(conn: sqlite3.Connection) -> int:
    """One past the highest seq ever given: pruning always keeps the newest movement."""
    row = conn.execute("SELECT max(seq) FROM movements").fetchone()
    return int(row[0] or 0) + 1


def read_sync_state(conn: sqlite3.Connection, sink: str = "ledger") -> SyncState:
    row = conn.execute(
        "SELECT attempts, next_attempt_at, last_success_at, last_error, last_error_at"
        " FROM sync_state WHERE sink = ?",
        (sink,),
    ).fetchone()
    return SyncState(*row) if row else SyncState()


def read_sink_pending(conn: sqlite3.Connection, sinks: tuple[str, ...]) -> dict[str, int]:
    """How many movements wait for each sink: pending, less what a sink already has."""
    pending = conn.execute("SELECT count(*) FROM movements WHERE state = 'pending'").fetchone()[0]
    done = dict(
        conn.execute(
            "SELECT d.sink, count(*) FROM deliveries d JOIN movements m ON m.seq = d.seq"
            " WHERE m.state = 'pending' GROUP BY d.sink"
        ).fetchall()
    )
    return {s: int(pending - done.get(s, 0)) for s in sinks}


def read_stats(conn: sqlite3.Connection, max_bytes: int) -> OutboxStats:
    """Counts for status and health; shared by the daemon and `edgetally status`."""
    counts = dict(conn.execute("SELECT state, count(*) FROM movements GROUP BY state").fetchall())
    oldest = conn.execute(
        "SELECT created_at FROM movements WHERE state = 'pending' ORDER BY seq LIMIT 1"
    ).fetchone()
    reads = conn.execute("SELECT count(*) FROM reads").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return OutboxStats(
        pending=counts.get("pending", 0),
        delivered=counts.get("delivered", 0),
        rejected=counts.get("rejected", 0),
        reads=reads,
        oldest_pending_created_at=oldest[0] if oldest else None,
        used_bytes=(pages - free) * page_size,
        max_bytes=max_bytes,
        next_seq=next_seq(conn),
    )


RESUME_MAX = 500_000  # tag reads taken back at a start to rebuild open RFID passes


def recent_tag_reads(
    path: str | Path, devices: set[str], since_wall: float, boot_id: str, since_mono_ns: int
) -> list[Read]:
    """Tag reads of ``devices`` stored since ``since_wall`` (by their UUIDv7 ids, the
    table's key), in order; of this boot only those since ``since_mono_ns``. Other
    boots' reads come back whole: their monotonic times mean nothing now, and the
    stations close them at once. Runs in a thread, on its own read-only connection."""
    conn = connect(path, readonly=True)
    try:
        rows = conn.execute(
            "SELECT id, device, data, symbology, antenna, rssi, seen_count, observed_at,"
            " mono_ns, boot_id, reader_first_seen_us, reader_last_seen_us, reader_offset_us"
            " FROM reads WHERE id >= ? AND kind = 'tag' ORDER BY id LIMIT ?",
            (uuid7_floor(since_wall), RESUME_MAX),
        ).fetchall()
    finally:
        conn.close()
    return [
        Read(
            id=rid,
            device=device,
            kind="tag",
            data=bytes(data),
            symbology=symbology,
            antenna=antenna,
            rssi=rssi,
            seen_count=seen_count,
            observed_at=observed_at,
            mono_ns=mono_ns,
            boot_id=boot,
            reader_first_seen_us=first_us,
            reader_last_seen_us=last_us,
            reader_offset_us=offset_us,
        )
        for (
            rid,
            device,
            data,
            symbology,
            antenna,
            rssi,
            seen_count,
            observed_at,
            mono_ns,
            boot,
            first_us,
            last_us,
            offset_us,
        ) in rows
        if device in devices and (boot != boot_id or mono_ns >= since_mono_ns)
    ]
