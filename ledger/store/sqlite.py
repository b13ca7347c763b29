"""The embedded backend: one SQLite file (the default, and what `edgetally demo` runs).

One writer connection behind a lock: every batch is one ``BEGIN IMMEDIATE``
transaction, so a batch is applied whole or not at all and no other writer can
slip in between reading on-hand and writing it. Reads open their own
short-lived connection, which WAL lets run beside the writer. Every method is
safe to call from any thread (the app calls them from Starlette's threadpool).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from ledger.schema import LedgerError, migrate
from ledger.store.base import Db, LedgerUnavailable, SqlStore
from ledger.store.domain import JournalRow, StockKey, Tx

T = TypeVar("T")


class _SqliteDb:
    """`Db` over a sqlite3 connection: ``%s`` placeholders become ``?``."""

    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql.replace("%s", "?"), params).fetchall()

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.conn.execute(sql.replace("%s", "?"), params).rowcount

    def many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        self.conn.executemany(sql.replace("%s", "?"), params)

    def rows_all(self, queries: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple[Any, ...]]]:
        return [self.rows(sql, params) for sql, params in queries]

    def run_all(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        for sql, params in statements:
            self.run(sql, params)


class _SqliteTx:
    """The writer holds the whole file, so reading on-hand needs no row locks."""

    def __init__(self, db: _SqliteDb) -> None:
        self.conn = db.conn

    def existing(self, ids: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            out.update(
                self.conn.execute(
                    f"SELECT id, payload FROM journal WHERE id IN ({marks})", chunk
                ).fetchall()
            )
        return out

    def on_hand(self, keys: Sequence[StockKey]) -> dict[StockKey, int]:
        out = {}
        for item, loc in keys:
            row = self.conn.execute(
                "SELECT qty FROM stock WHERE item = ? AND location = ?", (item, loc)
            ).fetchone()
            out[(item, loc)] = 0 if row is None else int(row[0])
        return out

    def insert_journal(self, rows: Sequence[JournalRow]) -> int:
        before = self.conn.total_changes
        self.conn.executemany(
            "INSERT INTO journal(id, agent, seq, kind, item, qty, from_loc, to_loc, payload, "
            "received_at, source, caused_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO NOTHING",
            [_values(r) for r in rows],
        )
        return self.conn.total_changes - before

    def held_at(self, location: str) -> dict[StockKey, int]:
        rows = self.conn.execute(
            "SELECT item, qty FROM stock WHERE location = ? AND qty != 0", (location,)
        ).fetchall()
        return {(item, location): int(qty) for item, qty in rows}

    def write_on_hand(self, rows: Sequence[tuple[str, str, int]]) -> None:
        self.conn.executemany(
            "INSERT INTO stock(item, location, qty) VALUES (?, ?, ?) "
            "ON CONFLICT(item, location) DO UPDATE SET qty = excluded.qty",
            rows,
        )


def _cannot_open(path: Path, exc: sqlite3.Error) -> str:
    """Why SQLite could not open the ledger's file, in words naming it (not a traceback)."""
    if path.is_dir():
        why = "is a folder; expected the ledger's SQLite file"
    elif not path.parent.is_dir():
        why = f"cannot be created: the folder {path.parent} does not exist"
    elif isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc):
        why = "is not an SQLite database; give the ledger's file, or a new path"
    else:
        why = f"cannot be used ({exc})"
    return f"ledger database {path}: {why}"


def _values(r: JournalRow) -> tuple[Any, ...]:
    return (
        r.id, r.agent, r.seq, r.kind, r.item, r.qty, r.from_loc, r.to_loc,
        r.payload, r.received_at, r.source, r.caused_by,
    )  # fmt: skip


class LedgerStore(SqlStore):
    """Journal + on-hand in one SQLite file; see the module docstring."""

    def __init__(self, path: Path | str, busy_timeout_ms: int = 5000) -> None:
        self.path = Path(path)
        self.name = f"ledger {self.path}"
        self._busy_timeout_ms = int(busy_timeout_ms)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        try:
            conn = self._connect()
        except sqlite3.Error as exc:
            raise LedgerError(_cannot_open(self.path, exc)) from exc
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise LedgerError(f"ledger {self.path}: cannot use WAL mode (got {mode!r})")
            migrate(conn, str(self.path))
        except sqlite3.Error as exc:
            conn.close()
            raise LedgerError(_cannot_open(self.path, exc)) from exc
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we say BEGIN and COMMIT ourselves.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        # 32 MiB of page cache (the default is 2 MiB): valuation's tables and indexes stay
        # in memory between batches instead of being read back from the file.
        conn.execute("PRAGMA cache_size = -32768")
        return conn

    def _transact(self, work: Callable[[Db], T]) -> T:
        with self._lock:
            conn = self._conn
            if conn is None:
                raise LedgerError(f"ledger {self.path}: the store is closed")
            with _unavailable_on_operational_error(self.path):
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work(_SqliteDb(conn))
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            return result

    @contextmanager
    def _reading(self) -> Iterator[Db]:
        if self._conn is None:
            raise LedgerError(f"ledger {self.path}: the store is closed")
        with _unavailable_on_operational_error(self.path), closing(self._connect()) as conn:
            conn.execute("PRAGMA query_only = ON")
            yield _SqliteDb(conn)

    def _tx(self, db: Db) -> Tx:
        assert isinstance(db, _SqliteDb)
        return _SqliteTx(db)


@contextmanager
def _unavailable_on_operational_error(path: Path) -> Iterator[None]:
    """Locked, busy, disk full or I/O error: the ledger's trouble, worth a retry."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        raise LedgerUnavailable(f"ledger {path}: {exc}") from exc
