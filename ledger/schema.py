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
    # -- token scopes, per-agent locations, seq regressions (issue 18) ----------------
    (
        "0005_scopes",
        """
        ALTER TABLE tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'agent'
            CHECK (role IN ('agent', 'reader'));
        CREATE TABLE agent_locations(
            agent TEXT NOT NULL,
            location TEXT NOT NULL,
            PRIMARY KEY (agent, location)
        );
        ALTER TABLE agents ADD COLUMN seq_regressions INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE agents ADD COLUMN last_regression TEXT;
        """,
    ),
    # -- perpetual valuation (issue 12): amounts in integer minor units, costs as decimal text
    (
        "0006_valuation",
        """
        CREATE TABLE val_settings(
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE TABLE val_items(
            item TEXT PRIMARY KEY,
            description TEXT,
            standard_cost TEXT,
            currency TEXT,
            method TEXT CHECK (method IN ('fifo', 'average')),
            reorder_point INTEGER,
            lead_time_days INTEGER,
            safety_stock INTEGER,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE val_streams(
            item TEXT NOT NULL,
            location TEXT NOT NULL,
            state TEXT NOT NULL,
            okey TEXT NOT NULL,
            pos INTEGER NOT NULL,
            qty INTEGER NOT NULL,
            value TEXT NOT NULL,
            posted INTEGER NOT NULL,
            PRIMARY KEY (item, location)
        ) WITHOUT ROWID;
        CREATE TABLE val_events(
            item TEXT NOT NULL,
            location TEXT NOT NULL,
            okey TEXT NOT NULL,
            pos INTEGER NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            movement TEXT NOT NULL,
            event TEXT NOT NULL,
            state TEXT,
            posted TEXT NOT NULL,
            PRIMARY KEY (item, location, okey, pos, direction)
        ) WITHOUT ROWID;
        CREATE TABLE entries(
            pos INTEGER PRIMARY KEY,
            entry TEXT NOT NULL,
            movement TEXT NOT NULL,
            kind TEXT NOT NULL,
            reason TEXT,
            item TEXT NOT NULL,
            stream_location TEXT NOT NULL,
            type TEXT NOT NULL CHECK (type IN ('post', 'correct', 'recost')),
            account TEXT NOT NULL,
            location TEXT,
            debit INTEGER NOT NULL CHECK (debit >= 0),
            credit INTEGER NOT NULL CHECK (credit >= 0),
            corrects TEXT,
            observed_at TEXT NOT NULL,
            posted_at TEXT NOT NULL,
            CHECK (debit = 0 OR credit = 0)
        );
        CREATE INDEX entries_movement ON entries(movement);
        CREATE TABLE val_provisional(
            movement TEXT NOT NULL,
            item TEXT NOT NULL,
            location TEXT NOT NULL,
            qty INTEGER NOT NULL,
            PRIMARY KEY (movement, item, location)
        );
        CREATE TABLE stock_alerts(
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            item TEXT NOT NULL,
            location TEXT NOT NULL,
            point INTEGER NOT NULL,
            on_hand INTEGER NOT NULL,
            raised_at TEXT NOT NULL,
            cleared_at TEXT
        );
        CREATE UNIQUE INDEX stock_alerts_open ON stock_alerts(item, location)
            WHERE cleared_at IS NULL;
        CREATE TABLE alert_outbox(
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            payload TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at REAL NOT NULL DEFAULT 0,
            sent_at TEXT,
            last_error TEXT
        );
        """,
    ),
    (
        # New valuation events are staged in arrival order and folded into val_events in
        # bulk, an entry is one row with its lines (entry_lines shows a row per line), and
        # what an event has posted is read from its entries, not kept beside it: what a
        # valued movement writes, halved (ledger/valuation/store.py says why).
        "0007_val_writes",
        """
        CREATE TABLE val_staging(
            id INTEGER PRIMARY KEY,
            item TEXT NOT NULL,
            location TEXT NOT NULL,
            okey TEXT NOT NULL,
            pos INTEGER NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            movement TEXT NOT NULL,
            event TEXT NOT NULL,
            state TEXT
        );
        ALTER TABLE val_events DROP COLUMN posted;
        CREATE TABLE entries_v2(
            pos INTEGER PRIMARY KEY,
            entry TEXT NOT NULL,
            movement TEXT NOT NULL,
            kind TEXT NOT NULL,
            reason TEXT,
            item TEXT NOT NULL,
            stream_location TEXT NOT NULL,
            type TEXT NOT NULL CHECK (type IN ('post', 'correct', 'recost')),
            lines TEXT NOT NULL,
            observed_at TEXT NOT NULL,
            posted_at TEXT NOT NULL
        );
        INSERT INTO entries_v2(pos, entry, movement, kind, reason, item, stream_location, type,
            lines, observed_at, posted_at)
            SELECT min(pos), entry, movement, kind, reason, item, stream_location, type,
                json_group_array(json_array(account, location, debit - credit, corrects)),
                observed_at, posted_at
            FROM (SELECT * FROM entries ORDER BY pos)
            GROUP BY entry, movement, kind, reason, item, stream_location, type, observed_at,
                posted_at;
        DROP TABLE entries;
        ALTER TABLE entries_v2 RENAME TO entries;
        CREATE INDEX entries_movement ON entries(movement);
        CREATE VIEW entry_lines AS
            SELECT e.pos, j.key AS line, e.entry, e.movement, e.kind, e.reason, e.item,
                e.stream_location, e.type, json_extract(j.value, '$[0]') AS account,
                json_extract(j.value, '$[1]') AS location,
                max(json_extract(j.value, '$[2]'), 0) AS debit,
                max(-json_extract(j.value, '$[2]'), 0) AS credit,
                json_extract(j.value, '$[3]') AS corrects, e.observed_at, e.posted_at
            FROM entries e, json_each(e.lines) j;
        """,
    ),
)


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def migrate(conn: sqlite3.Connection, path: str = "") -> list[str]:
    """Bring the ledger database up to this version's schema."""
    return apply_migrations(conn, MIGRATIONS, f"the ledger database {path}".rstrip(), LedgerError)
