"""Named, recorded, transactional schema migrations for our SQLite files.

The sqlite-utils way: each migration and its row in ``migrations`` commit in
one transaction, so a crash mid-upgrade leaves the file at the old version.
Shared by the outbox and the reference ledger. Never edit a migration that
has shipped: add a new one.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

Migrations = tuple[tuple[str, str], ...]


def migrate(
    conn: sqlite3.Connection, migrations: Migrations, what: str, error: type[Exception]
) -> list[str]:
    """Apply the migrations ``conn`` lacks, in order; return their names.

    ``what`` names the file for messages ("outbox /var/lib/..."); a file that
    holds a migration this code does not know was written by a newer version
    and is refused with ``error``.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS migrations(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT name FROM migrations")}
    unknown = sorted(done - {name for name, _ in migrations})
    if unknown:
        raise error(
            f"{what} has migration {unknown[-1]!r}, unknown to this version of EdgeTally: "
            "it was written by a newer version; run that version or move the file aside"
        )
    applied: list[str] = []
    for number, (name, sql) in enumerate(migrations, start=1):
        if name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO migrations(name, applied_at) VALUES (?, ?)",
                (name, datetime.now(UTC).isoformat(timespec="seconds")),
            )
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied


def _statements(sql: str) -> list[str]:
    """Split a migration into statements; ``executescript`` would commit on its own."""
    out, buf = [], ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
