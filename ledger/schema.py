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
    (
        # Tokens become their own table (several per agent over time, revocable);
        # agents keep what the fleet view needs; alarms are kept, once each.
        "0002_fleet",
        """
        CREATE TABLE tokens(
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            agent TEXT NOT NULL,
            token_sha256 TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            revoked_at TEXT
        );
        CREATE INDEX tokens_agent ON tokens(agent);
        INSERT INTO tokens(agent, token_sha256, created_at)
            SELECT agent, token_sha256, '' FROM agents;
        CREATE TABLE agents_new(
            agent TEXT PRIMARY KEY,
            last_contact TEXT,
            last_error TEXT,
            last_error_at TEXT
        );
        INSERT INTO agents_new(agent) SELECT agent FROM agents;
        DROP TABLE agents;
        ALTER TABLE agents_new RENAME TO agents;
        CREATE INDEX journal_agent_seq ON journal(agent, seq);
        CREATE TABLE alarms(
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            agent TEXT NOT NULL,
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            detail TEXT NOT NULL,
            UNIQUE (agent, kind, key)
        );
        """,
    ),
    # -- dashboard users and their sessions (issue 13) ---------------------------------
    (
        "0003_users",
        """
        CREATE TABLE users(
            name TEXT PRIMARY KEY,
            password_hash TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE sessions(
            token_sha256 TEXT PRIMARY KEY,
            user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
            expires_at REAL NOT NULL
        );
        """,
    ),
    # -- EPCIS 2.0 capture (issue 14): captured events beside the journal, capture jobs ----
    (
        "0004_epcis",
        """
        CREATE TABLE epcis_events(
            pos INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id TEXT NOT NULL UNIQUE,
            movement_id TEXT NOT NULL,
            agent TEXT NOT NULL,
            event_type TEXT NOT NULL,
            biz_step TEXT,
            event_time TEXT NOT NULL,
            content_sha256 TEXT NOT NULL,
            payload TEXT NOT NULL,
            capture_id TEXT NOT NULL
        );
        CREATE INDEX epcis_events_time ON epcis_events(event_time);
        CREATE INDEX epcis_events_step ON epcis_events(biz_step, pos);
        CREATE TABLE epcis_event_epcs(
            event_id TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('epc', 'class')),
            epc TEXT NOT NULL,
            PRIMARY KEY (epc, kind, event_id)
        );
        CREATE TABLE epcis_captures(
            id TEXT PRIMARY KEY,
            agent TEXT NOT NULL,
            created_at TEXT NOT NULL,
            finished_at TEXT,
            behaviour TEXT NOT NULL,
            success INTEGER NOT NULL,
            captured INTEGER NOT NULL,
            duplicates TEXT NOT NULL,
            errors TEXT NOT NULL
        );
        """,
    ),
)


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def migrate(conn: sqlite3.Connection, path: str = "") -> list[str]:
    """Bring the ledger database up to this version's schema."""
    return apply_migrations(conn, MIGRATIONS, f"the ledger database {path}".rstrip(), LedgerError)
