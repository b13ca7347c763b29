"""The ledger schema on PostgreSQL: the same named migrations as SQLite's (ledger/schema.py).

Same names, same tables, PostgreSQL's types. Each migration and its row in
``migrations`` commit in one transaction, under an advisory lock, so several
ledger processes starting at once apply each migration exactly once.
"""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from ledger.schema import MIGRATIONS as SQLITE_MIGRATIONS
from ledger.schema import LedgerError

# Any fixed number: the advisory lock all ledger processes take to migrate.
_LOCK = 0x6564676574616C79  # "edgetally"

MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "0001_initial",
        """
        CREATE TABLE agents(
            agent TEXT PRIMARY KEY,
            token_sha256 TEXT NOT NULL UNIQUE
        );
        CREATE TABLE journal(
            pos BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id TEXT UNIQUE NOT NULL,
            agent TEXT,
            seq BIGINT,
            kind TEXT,
            item TEXT,
            qty BIGINT,
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
            qty BIGINT,
            PRIMARY KEY (item, location)
        );
        """,
    ),
    (
        "0002_fleet",
        """
        CREATE TABLE tokens(
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            agent TEXT NOT NULL,
            token_sha256 TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            revoked_at TEXT
        );
        CREATE INDEX tokens_agent ON tokens(agent);
        INSERT INTO tokens(agent, token_sha256, created_at)
            SELECT agent, token_sha256, '' FROM agents;
        ALTER TABLE agents DROP COLUMN token_sha256;
        ALTER TABLE agents ADD COLUMN last_contact TEXT;
        ALTER TABLE agents ADD COLUMN last_error TEXT;
        ALTER TABLE agents ADD COLUMN last_error_at TEXT;
        CREATE INDEX journal_agent_seq ON journal(agent, seq);
        CREATE TABLE alarms(
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
            expires_at DOUBLE PRECISION NOT NULL
        );
        """,
    ),
    # -- EPCIS 2.0 capture (issue 14): captured events beside the journal, capture jobs ----
    (
        "0004_epcis",
        """
        CREATE TABLE epcis_events(
            pos BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
            captured BIGINT NOT NULL,
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
        ALTER TABLE agents ADD COLUMN seq_regressions BIGINT NOT NULL DEFAULT 0;
        ALTER TABLE agents ADD COLUMN last_regression TEXT;
        """,
    ),
    # -- perpetual valuation (issue 12): amounts in integer minor units, NUMERIC
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
            standard_cost NUMERIC(18, 6),
            currency TEXT,
            method TEXT CHECK (method IN ('fifo', 'average')),
            reorder_point BIGINT,
            lead_time_days INTEGER,
            safety_stock BIGINT,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE val_streams(
            item TEXT NOT NULL,
            location TEXT NOT NULL,
            state TEXT NOT NULL,
            okey TEXT NOT NULL,
            pos BIGINT NOT NULL,
            qty BIGINT NOT NULL,
            value NUMERIC(24, 6) NOT NULL,
            posted NUMERIC(20, 0) NOT NULL,
            PRIMARY KEY (item, location)
        );
        CREATE TABLE val_events(
            item TEXT NOT NULL,
            location TEXT NOT NULL,
            okey TEXT NOT NULL,
            pos BIGINT NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            movement TEXT NOT NULL,
            event TEXT NOT NULL,
            state TEXT,
            posted TEXT NOT NULL,
            PRIMARY KEY (item, location, okey, pos, direction)
        );
        CREATE TABLE entries(
            pos BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            entry TEXT NOT NULL,
            movement TEXT NOT NULL,
            kind TEXT NOT NULL,
            reason TEXT,
            item TEXT NOT NULL,
            stream_location TEXT NOT NULL,
            type TEXT NOT NULL CHECK (type IN ('post', 'correct', 'recost')),
            account TEXT NOT NULL,
            location TEXT,
            debit NUMERIC(20, 0) NOT NULL CHECK (debit >= 0),
            credit NUMERIC(20, 0) NOT NULL CHECK (credit >= 0),
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
            qty BIGINT NOT NULL,
            PRIMARY KEY (movement, item, location)
        );
        CREATE TABLE stock_alerts(
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            item TEXT NOT NULL,
            location TEXT NOT NULL,
            point BIGINT NOT NULL,
            on_hand BIGINT NOT NULL,
            raised_at TEXT NOT NULL,
            cleared_at TEXT
        );
        CREATE UNIQUE INDEX stock_alerts_open ON stock_alerts(item, location)
            WHERE cleared_at IS NULL;
        CREATE TABLE alert_outbox(
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            payload TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at DOUBLE PRECISION NOT NULL DEFAULT 0,
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
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            item TEXT NOT NULL,
            location TEXT NOT NULL,
            okey TEXT NOT NULL,
            pos BIGINT NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            movement TEXT NOT NULL,
            event TEXT NOT NULL,
            state TEXT
        );
        ALTER TABLE val_events DROP COLUMN posted;
        CREATE TABLE entries_v2(
            pos BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
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
                json_agg(json_build_array(account, location, debit - credit, corrects)
                    ORDER BY pos)::text,
                observed_at, posted_at
            FROM entries
            GROUP BY entry, movement, kind, reason, item, stream_location, type, observed_at,
                posted_at;
        SELECT setval(pg_get_serial_sequence('entries_v2', 'pos'),
            (SELECT coalesce(max(pos), 0) + 1 FROM entries_v2), false);
        DROP TABLE entries;
        ALTER TABLE entries_v2 RENAME TO entries;
        CREATE INDEX entries_movement ON entries(movement);
        CREATE VIEW entry_lines AS
            SELECT e.pos, l.n - 1 AS line, e.entry, e.movement, e.kind, e.reason, e.item,
                e.stream_location, e.type, l.v ->> 0 AS account, l.v ->> 1 AS location,
                greatest((l.v ->> 2)::numeric, 0) AS debit,
                greatest(-(l.v ->> 2)::numeric, 0) AS credit,
                l.v ->> 3 AS corrects, e.observed_at, e.posted_at
            FROM entries e CROSS JOIN LATERAL jsonb_array_elements(e.lines::jsonb)
                WITH ORDINALITY AS l(v, n);
        """,
    ),
)

# A migration added for SQLite must be added here too, under the same name.
assert [n for n, _ in MIGRATIONS] == [n for n, _ in SQLITE_MIGRATIONS]


def migrate(conn: psycopg.Connection[tuple[object, ...]], what: str) -> list[str]:
    """Apply the migrations the database lacks, in order; return their names."""
    applied: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS migrations(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
    for name, sql in MIGRATIONS:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
            done = {str(row[0]) for row in conn.execute("SELECT name FROM migrations")}
            unknown = sorted(done - {n for n, _ in MIGRATIONS})
            if unknown:
                raise LedgerError(
                    f"{what} has migration {unknown[-1]!r}, unknown to this version of "
                    "EdgeTally: it was written by a newer version; run that version"
                )
            if name in done:
                continue
            for statement in (s.strip() for s in sql.split(";")):
                if statement:
                    conn.execute(statement.encode())
            conn.execute(
                "INSERT INTO migrations(name, applied_at) VALUES (%s, %s)",
                (name, datetime.now(UTC).isoformat(timespec="seconds")),
            )
        applied.append(name)
    return applied
