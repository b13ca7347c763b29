"""The outbox schema, as named migrations applied in order (agent.migrations).

Never edit a migration that has shipped: add a new one.
"""

from __future__ import annotations

import sqlite3

from agent.errors import OutboxError
from agent.migrations import migrate as apply_migrations

MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "0001_initial",
        """
        CREATE TABLE meta(
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE TABLE reads(
            id TEXT PRIMARY KEY NOT NULL,
            device TEXT NOT NULL,
            kind TEXT NOT NULL,
            data BLOB NOT NULL,
            symbology TEXT,
            antenna INTEGER,
            rssi REAL,
            seen_count INTEGER,
            observed_at TEXT NOT NULL,
            mono_ns INTEGER NOT NULL,
            boot_id TEXT NOT NULL,
            outcome TEXT,
            first_seq INTEGER,
            last_seq INTEGER,
            created_at REAL NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE movements(
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            -- No foreign key or index on read_id: each costs a b-tree write per scan.
            -- A read's movements are the seq range reads.first_seq..last_seq.
            read_id TEXT,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'delivered', 'rejected')),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            created_at REAL NOT NULL,
            settled_at REAL
        );
        CREATE INDEX movements_pending ON movements(seq) WHERE state = 'pending';
        CREATE INDEX movements_delivered ON movements(settled_at) WHERE state = 'delivered';
        CREATE TABLE station_state(
            station TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (station, key)
        );
        CREATE TABLE sync_state(
            sink TEXT PRIMARY KEY,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL,
            last_success_at REAL,
            last_error TEXT,
            last_error_at REAL
        );
        """,
    ),
    (
        # CANCEL: a movement undone before delivery stays as a record in state
        # 'cancelled' with the id of the read that cancelled it. SQLite cannot
        # change a CHECK constraint in place, hence the table is rebuilt.
        "0002_cancelled_movements",
        """
        CREATE TABLE movements_new(
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            read_id TEXT,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'delivered', 'rejected', 'cancelled')),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            created_at REAL NOT NULL,
            settled_at REAL,
            cancelled_by TEXT
        );
        INSERT INTO movements_new(seq, id, read_id, kind, payload, state, attempts,
            last_error, created_at, settled_at)
            SELECT seq, id, read_id, kind, payload, state, attempts, last_error, created_at,
                settled_at FROM movements;
        DROP TABLE movements;
        ALTER TABLE movements_new RENAME TO movements;
        CREATE INDEX movements_pending ON movements(seq) WHERE state = 'pending';
        CREATE INDEX movements_delivered ON movements(settled_at) WHERE state = 'delivered';
        CREATE INDEX movements_cancelled ON movements(settled_at) WHERE state = 'cancelled';
        """,
    ),
    (
        # An RFID reader's own first/last-seen stamps (µs UTC) and its clock's offset
        # from the agent's, kept as evidence beside the agent's observed_at.
        "0003_read_reader_times",
        """
        ALTER TABLE reads ADD COLUMN reader_first_seen_us INTEGER;
        ALTER TABLE reads ADD COLUMN reader_last_seen_us INTEGER;
        ALTER TABLE reads ADD COLUMN reader_offset_us INTEGER;
        """,
    ),
    (
        # Several sinks (issue 14). A movement's own ``state`` stays the summary:
        # 'pending' until every configured sink has settled it, then 'delivered'
        # (or 'rejected' when any sink refused it). With one sink it is that sink's
        # state, exactly as before, and nothing else is written. With several, a
        # sink that settles a movement others still wait for gets a row here; a
        # movement still pending has no row for the sinks that have yet to take
        # it. Nothing is written at enqueue: the scan's path to disk is unchanged.
        # Today's outbox needs no data change: what was pending is pending for the
        # http-ledger sink (named ``ledger``), what was delivered is delivered for it.
        # Per sink, the backoff (attempts, next_attempt_at, last error) is the
        # existing sync_state row named after it: only the head of a sink's queue
        # is ever being tried.
        "0004_sinks",
        """
        CREATE TABLE deliveries(
            seq INTEGER NOT NULL,
            sink TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('delivered', 'rejected')),
            reason TEXT,
            settled_at REAL NOT NULL,
            PRIMARY KEY (seq, sink)
        ) WITHOUT ROWID;
        """,
    ),
)


def migrate(conn: sqlite3.Connection, path: str) -> list[str]:
    """Bring the outbox at ``path`` up to this version's schema."""
    return apply_migrations(conn, MIGRATIONS, f"the outbox {path}", OutboxError)
