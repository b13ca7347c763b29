"""The ledger schema, as named migrations applied in order.

Each migration and its record in `migrations` run in one transaction (the
sqlite-utils way), so a crash mid-upgrade leaves the file at the old version.
Never edit a migration that has shipped: add a new one.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from agent.errors import EdgeTallyError
from agent.migrations import migrate as apply_migrations


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
    # -- dashboard users and their sessions (issue 13) ---------------------------------
    (
        "0002_users",
        """
        CREATE TABLE users(
            name TEXT PRIMARY KEY,
            password_hash TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE sessions(
            token_sha256 TEXT PRIMARY KEY,
            user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
            expires_at REAL NOT NULL
        );
        """,
    ),
)


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def migrate(conn: sqlite3.Connection, path: str = "") -> list[str]:
    """Bring the ledger database up to this version's schema."""
    return apply_migrations(conn, MIGRATIONS, f"the ledger database {path}".rstrip(), LedgerError)
