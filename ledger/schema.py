"""The ledger schema, as named migrations applied in order.

Each migration and its record in `migrations` run in one transaction (the
sqlite-utils way), so a crash mid-upgrade leaves the file at the old version.
Never edit a migration that has shipped: add a new one.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from agent.errors import EdgeTallyError


class LedgerError(EdgeTallyError):
    """The ledger's store cannot do what was asked (bad file, closed store)."""


MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "0001_initial",
        """
        CREATE TABLE agents(
            agent TEXT PRIMARY KEY,
            token_sha256 TEXT NOT NULL
        );
        CREATE UNIQUE INDEX agents_token ON agents(token_sha256);
        CREATE TABLE journal(
            pos INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT UNIQUE NOT NULL,
            agent TEXT,
            seq INTEGER,
            kind TEXT,
            item TEXT,
            qty INTEGER,
            from_loc TEXT,
            to_loc TEXT,
            payload TEXT NOT NULL,
            received_at TEXT,
            source TEXT CHECK (source IN ('agent', 'ledger')),
            caused_by TEXT
        );
        CREATE INDEX journal_agent ON journal(agent, pos);
        CREATE TABLE stock(
            item TEXT,
            location TEXT,
            qty INTEGER,
            PRIMARY KEY (item, location)
        );
        """,
    ),
)


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def migrate(
    conn: sqlite3.Connection, migrations: tuple[tuple[str, str], ...] = MIGRATIONS
) -> list[str]:
    """Apply the migrations this file lacks; return their names."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS migrations(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT name FROM migrations")}
    unknown = sorted(done - {name for name, _ in migrations})
    if unknown:
        raise LedgerError(
            f"the ledger database has migration {unknown[-1]!r}, unknown to this version of "
            "EdgeTally: it was written by a newer version; run that version instead"
        )
    applied = []
    for name, sql in migrations:
        if name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute("INSERT INTO migrations(name, applied_at) VALUES (?, ?)", (name, utcnow()))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
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
