"""The site backend: PostgreSQL through psycopg 3 and a psycopg_pool connection pool.

Several ledger processes share one database. A batch is one READ COMMITTED
transaction that first locks the on-hand rows it touches, in (item, location)
order (creating absent ones at 0), so two batches touching the same stock wait
for each other instead of losing an update, and never deadlock on those rows.
The journal insert is ``ON CONFLICT (id) DO NOTHING``: an id another process
journaled after we looked makes the batch run again (`Raced`), as do
serialisation failures and deadlocks; none of them ever reaches the client.
A database that is down or unreachable is `LedgerUnavailable` (503 + Retry-After).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
import psycopg.errors
from psycopg_pool import ConnectionPool
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from ledger.schema import LedgerError
from ledger.store.base import Db, LedgerUnavailable, SqlStore
from ledger.store.domain import JournalRow, Raced, StockKey, Tx
from ledger.store.pg_schema import migrate

T = TypeVar("T")
Conn = psycopg.Connection[tuple[Any, ...]]


class _PgDb:
    dialect = "postgresql"

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql.encode(), params).fetchall()

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.conn.execute(sql.encode(), params).rowcount

    def many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(sql.encode(), params)

    def rows_all(self, queries: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple[Any, ...]]]:
        """Several queries in one round trip (psycopg's pipeline mode), run in order."""
        cursors = []
        with self.conn.pipeline():
            for sql, params in queries:
                cur = self.conn.cursor()
                cur.execute(sql.encode(), params)
                cursors.append(cur)
        return [cur.fetchall() for cur in cursors]

    def run_all(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """Several statements in one round trip, in order (as `rows_all`); the first
        error raises when the pipeline ends, and the transaction is then aborted."""
        with self.conn.pipeline():
            for sql, params in statements:
                self.conn.execute(sql.encode(), params)


class _PgTx:
    def __init__(self, db: _PgDb) -> None:
        self.conn = db.conn
        self._created: set[StockKey] = set()

    def existing(self, ids: Sequence[str]) -> dict[str, str]:
        if not ids:
            return {}
        rows = self.conn.execute(
            "SELECT id, payload FROM journal WHERE id = ANY(%b::text[])", (list(ids),)
        ).fetchall()
        return dict(rows)

    def on_hand(self, keys: Sequence[StockKey]) -> dict[StockKey, int]:
        if not keys:
            return {}
        items = [k[0] for k in keys]
        locs = [k[1] for k in keys]
        created = self.conn.execute(
            "INSERT INTO stock(item, location, qty) "
            "SELECT i, l, 0 FROM unnest(%s::text[], %s::text[]) AS k(i, l) ORDER BY i, l "
            "ON CONFLICT DO NOTHING RETURNING item, location",
            (items, locs),
        ).fetchall()
        self._created = {(i, loc) for i, loc in created}
        rows = self.conn.execute(
            "SELECT s.item, s.location, s.qty FROM stock s "
            "JOIN unnest(%s::text[], %s::text[]) AS k(i, l) ON s.item = k.i AND s.location = k.l "
            "ORDER BY s.item, s.location FOR UPDATE OF s",
            (items, locs),
        ).fetchall()
        out = {(i, loc): int(q) for i, loc, q in rows}
        return {key: out.get(key, 0) for key in keys}

    def held_at(self, location: str) -> dict[StockKey, int]:
        rows = self.conn.execute(
            "SELECT item, qty FROM stock WHERE location = %s AND qty <> 0 ORDER BY item FOR UPDATE",
            (location,),
        ).fetchall()
        return {(item, location): int(qty) for item, qty in rows}

    def insert_journal(self, rows: Sequence[JournalRow]) -> int:
        # %b: arrays sent in binary, not quoted element by element in text.
        inserted = self.conn.execute(
            "INSERT INTO journal(id, agent, seq, kind, item, qty, from_loc, to_loc, payload, "
            "received_at, source, caused_by) "
            "SELECT * FROM unnest(%b::text[], %b::text[], %b::bigint[], %b::text[], %b::text[], "
            "%b::bigint[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[]) "
            "ON CONFLICT (id) DO NOTHING",
            [
                [r.id for r in rows],
                [r.agent for r in rows],
                [r.seq for r in rows],
                [r.kind for r in rows],
                [r.item for r in rows],
                [r.qty for r in rows],
                [r.from_loc for r in rows],
                [r.to_loc for r in rows],
                [r.payload for r in rows],
                [r.received_at for r in rows],
                [r.source for r in rows],
                [r.caused_by for r in rows],
            ],
        ).rowcount
        return int(inserted)

    def write_on_hand(self, rows: Sequence[tuple[str, str, int]]) -> None:
        if rows:
            self.conn.execute(
                "UPDATE stock s SET qty = k.q FROM unnest(%s::text[], %s::text[], %s::bigint[]) "
                "AS k(i, l, q) WHERE s.item = k.i AND s.location = k.l",
                ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]),
            )
        # Rows made at 0 only to be locked, for movements that were then refused.
        unused = self._created - {(r[0], r[1]) for r in rows}
        if unused:
            self.conn.execute(
                "DELETE FROM stock s USING unnest(%s::text[], %s::text[]) AS k(i, l) "
                "WHERE s.item = k.i AND s.location = k.l",
                ([k[0] for k in unused], [k[1] for k in unused]),
            )


_ROLLBACK = (
    psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected,
    psycopg.errors.TransactionRollback,
)
_SHUTDOWN = (
    psycopg.errors.AdminShutdown,
    psycopg.errors.CrashShutdown,
    psycopg.errors.CannotConnectNow,
)


def _retryable(exc: BaseException) -> bool:
    """What running the batch again fixes: a race, a serialisation failure, a deadlock,
    or a pooled connection the server dropped (a restart); not a pool timeout."""
    if isinstance(exc, (Raced, *_ROLLBACK)):
        return True
    # A plain OperationalError is libpq's "server closed the connection"; the pool
    # drops that connection, and the next attempt gets a live one or a PoolTimeout.
    return type(exc) is psycopg.OperationalError or isinstance(exc, _SHUTDOWN)


class PgStore(SqlStore):
    """Journal + on-hand in PostgreSQL; see the module docstring."""

    def __init__(
        self,
        conninfo: str,
        password: str | None = None,
        pool_size: int = 8,
        timeout_s: float = 2.0,
        attempts: int = 30,
    ) -> None:
        self.conninfo = conninfo
        self.name = f"ledger {_safe(conninfo)}"
        kwargs: dict[str, Any] = {"autocommit": True}
        if password is not None:
            kwargs["password"] = password
        self._attempts = attempts
        try:
            with psycopg.connect(conninfo, connect_timeout=10, **kwargs) as conn:
                migrate(conn, f"the ledger database {_safe(conninfo)}")
        except psycopg.Error as exc:
            raise LedgerError(f"{self.name}: cannot open the database: {_first_line(exc)}") from exc
        self._pool: ConnectionPool[Conn] | None = ConnectionPool(
            conninfo,
            kwargs=kwargs,
            min_size=1,
            max_size=pool_size,
            timeout=timeout_s,
            open=False,
            name="edgetally-ledger",
        )
        self._pool.open(wait=True, timeout=10)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def _pool_or_fail(self) -> ConnectionPool[Conn]:
        if self._pool is None:
            raise LedgerError(f"{self.name}: the store is closed")
        return self._pool

    def _transact(self, work: Callable[[Db], T]) -> T:
        pool = self._pool_or_fail()
        with _unavailable(self.name):
            for attempt in Retrying(
                retry=retry_if_exception(_retryable),
                stop=stop_after_attempt(self._attempts),
                wait=wait_random_exponential(multiplier=0.005, max=0.2),
                reraise=True,
            ):
                with attempt, pool.connection() as conn, conn.transaction():
                    return work(_PgDb(conn))
        raise AssertionError("unreachable: Retrying re-raises")

    @contextmanager
    def _reading(self) -> Iterator[Db]:
        pool = self._pool_or_fail()
        with _unavailable(self.name), pool.connection() as conn:
            yield _PgDb(conn)

    def _tx(self, db: Db) -> Tx:
        assert isinstance(db, _PgDb)
        return _PgTx(db)


@contextmanager
def _unavailable(name: str) -> Iterator[None]:
    try:
        yield
    except (psycopg.OperationalError, Raced) as exc:
        raise LedgerUnavailable(f"{name}: database unavailable ({_first_line(exc)})") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _safe(conninfo: str) -> str:
    """The conninfo without a password, for messages."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "postgresql://…"
    host = params.get("host", "")
    port = params.get("port", "")
    return f"postgresql://{params.get('user', '')}@{host}{':' if port else ''}{port}/{params.get('dbname', '')}"


def has_password(conninfo: str) -> bool:
    try:
        return bool(psycopg.conninfo.conninfo_to_dict(conninfo).get("password"))
    except psycopg.ProgrammingError as exc:
        raise LedgerError(f"--db: not a PostgreSQL URL ({_first_line(exc)})") from exc
