"""The outbox schema, as named migrations applied in order.

Each migration and its record in `migrations` run in one transaction (the
sqlite-utils way), so a crash mid-upgrade leaves the file at the old version.
Never edit a migration that has shipped: add a new one.
"""

from __future__ import annotations

import sqlite3
import time

from agent.errors import OutboxError

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
)


def migrate(
    conn: sqlite3.Connection, migrations: tuple[tuple[str, str], ...] = MIGRATIONS
) -> list[str]:
    """Apply the migrations this file lacks; return their names."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS migrations(name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT name FROM migrations")}
    known = {name for name, _ in migrations}
    unknown = sorted(done - known)
    if unknown:
        raise OutboxError(
            f"the outbox has migration {unknown[-1]!r}, unknown to this version of EdgeTally: "
            "it was written by a newer version; run that version or move the file aside"
        )
    applied: list[str] = []
    for name, sql in migrations:
        if name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO migrations(name, applied_at) VALUES (?, ?)", (name, time.time())
            )
            conn.execute(f"PRAGMA user_version = {len(done) + len(applied) + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied


def _statements(sql: str) -> list[str]:
    """Split a migration into statements; `executescript` would commit on its own."""
    out, buf = [], ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
