"""The reference ledger's store: a journal of movements and on-hand by item and location.

One SQLite file. One writer connection behind a lock: every batch is one
``BEGIN IMMEDIATE`` transaction, so a batch is applied whole or not at all.
Reads open their own short-lived connection, which WAL lets run beside the
writer. Every method is safe to call from any thread (the app calls them from
Starlette's threadpool).

Each movement id is applied at most once: it is unique in the journal, and a
movement sent again is answered ``duplicate`` if it is the same movement.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

from agent.model import MAX_TEXT, Movement
from ledger.passwords import hash_password, verify_password
from ledger.schema import LedgerError, migrate, utcnow

# Quantities, on-hand and seq stay within what every JSON reader (JavaScript's
# included) holds exactly, and far inside SQLite's 64-bit integers.
MAX_INT = 2**53 - 1
MAX_PAGE = 1000
# Fixed for ever: the variance adjust of count X has id uuid5(VARIANCE_NS, X),
# so replaying a count can never post a second adjust.
VARIANCE_NS = uuid.UUID("6d1f4f3e-9a53-5c43-9d7e-2f0c1b8e7a51")
_REASON_MAX = 300

Result = dict[str, Any]


class _Rejected(Exception):
    """A movement the ledger will not apply; the message is the reason sent back."""


class LedgerStore:
    """Journal + on-hand in one SQLite file; see the module docstring."""

    def __init__(self, path: Path | str, busy_timeout_ms: int = 5000) -> None:
        self.path = Path(path)
        self._busy_timeout_ms = int(busy_timeout_ms)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        conn = self._connect()
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise LedgerError(f"ledger {self.path}: cannot use WAL mode (got {mode!r})")
            migrate(conn, str(self.path))
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    # -- lifecycle -------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> LedgerStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we say BEGIN and COMMIT ourselves.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """The writer connection inside one BEGIN IMMEDIATE transaction."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise LedgerError(f"ledger {self.path}: the store is closed")
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        if self._conn is None:
            raise LedgerError(f"ledger {self.path}: the store is closed")
        with closing(self._connect()) as conn:
            conn.execute("PRAGMA query_only = ON")
            yield conn

    # -- agents ----------------------------------------------------------------

    def add_agent(self, agent: str) -> str:
        """Create or replace the agent's token; only its sha256 is kept."""
        if not isinstance(agent, str) or not agent or len(agent) > MAX_TEXT:
            raise ValueError(f"agent: expected a non-empty string of at most {MAX_TEXT} chars")
        token = secrets.token_urlsafe(32)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO agents(agent, token_sha256) VALUES (?, ?) "
                "ON CONFLICT(agent) DO UPDATE SET token_sha256 = excluded.token_sha256",
                (agent, _sha256(token)),
            )
        return token

    def agent_for_token(self, token: str) -> str | None:
        with self._read() as conn:
            row = conn.execute(
                "SELECT agent FROM agents WHERE token_sha256 = ?", (_sha256(token),)
            ).fetchone()
        return None if row is None else str(row[0])

    # -- dashboard users and sessions (issue 13) --------------------------------

    def add_user(self, name: str, password: str) -> None:
        """Create the user or set a new password (which ends the user's sessions)."""
        if not isinstance(name, str) or not name or len(name) > MAX_TEXT or name != name.strip():
            raise ValueError(f"user name: expected non-empty text of at most {MAX_TEXT} chars")
        hashed = hash_password(password)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO users(name, password_hash, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET password_hash = excluded.password_hash",
                (name, hashed, utcnow()),
            )
            conn.execute("DELETE FROM sessions WHERE user = ?", (name,))

    def login(self, name: str, password: str, ttl_s: float) -> str | None:
        """A new session token for the right password, else None; only its sha256 is kept."""
        with self._read() as conn:
            row = conn.execute("SELECT password_hash FROM users WHERE name = ?", (name,)).fetchone()
        if not verify_password(password, None if row is None else str(row[0])):
            return None
        token = secrets.token_urlsafe(32)
        now = time.time()
        with self._write() as conn:
            conn.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
            conn.execute(
                "INSERT INTO sessions(token_sha256, user, expires_at) VALUES (?, ?, ?)",
                (_sha256(token), name, now + ttl_s),
            )
        return token

    def session_user(self, token: str, end: bool = False) -> str | None:
        """The user of a live session token; with ``end``, the session ends (log out)."""
        if end:
            with self._write() as conn:
                conn.execute("DELETE FROM sessions WHERE token_sha256 = ?", (_sha256(token),))
            return None
        with self._read() as conn:
            row = conn.execute(
                "SELECT user FROM sessions WHERE token_sha256 = ? AND expires_at >= ?",
                (_sha256(token), time.time()),
            ).fetchone()
        return None if row is None else str(row[0])

    # -- movements -------------------------------------------------------------

    def apply_batch(self, agent: str, movements: list[object]) -> list[Result]:
        """Apply a batch in one transaction; one result per movement, in order.

        A movement the ledger refuses is answered ``rejected`` and does not
        touch the others; anything unexpected rolls the whole batch back.
        """
        received_at = utcnow()
        with self._write() as conn:
            return [self._apply_one(conn, agent, raw, received_at) for raw in movements]

    def _apply_one(
        self, conn: sqlite3.Connection, agent: str, raw: object, received_at: str
    ) -> Result:
        mid = _echo_id(raw)
        try:
            m = Movement.from_dict(raw)  # type: ignore[arg-type]  # it checks for a mapping
            payload = _canonical(m)
            if m.agent != agent:
                raise _Rejected(f"movement.agent {m.agent!r} is not the agent of this token")
            if m.qty > MAX_INT:
                raise _Rejected(f"movement.qty: expected at most {MAX_INT}")
            if m.seq is not None and m.seq > MAX_INT:
                raise _Rejected(f"movement.seq: expected at most {MAX_INT}")
        except (_Rejected, ValueError, TypeError, RecursionError) as exc:
            return {"id": mid, "status": "rejected", "reason": _reason(exc)}
        row = conn.execute("SELECT payload FROM journal WHERE id = ?", (m.id,)).fetchone()
        if row is not None:
            if row[0] == payload:
                return {"id": m.id, "status": "duplicate"}
            return {
                "id": m.id,
                "status": "rejected",
                "reason": "id already used for a different movement",
            }
        try:
            self._post(conn, m, payload, received_at)
        except _Rejected as exc:
            return {"id": m.id, "status": "rejected", "reason": _reason(exc)}
        return {"id": m.id, "status": "applied"}

    def _post(self, conn: sqlite3.Connection, m: Movement, payload: str, at: str) -> None:
        """Journal the movement and change on-hand; checks everything before writing."""
        item = m.item.key()
        assert item is not None  # Movement.from_dict requires a key
        variance: Movement | None = None
        if m.kind == "count":
            assert m.to is not None
            before = _on_hand(conn, item, m.to)
            writes = [(m.to, m.qty)]
            if m.qty != before:
                variance = _variance(m, before)
                if conn.execute("SELECT 1 FROM journal WHERE id = ?", (variance.id,)).fetchone():
                    raise _Rejected("the id of this count's variance adjust is already used")
        else:
            writes = _new_on_hand(conn, item, _deltas(m))
        _journal(conn, m, payload, at, "agent", None)
        if variance is not None:
            _journal(conn, variance, _canonical(variance), at, "ledger", m.id)
        conn.executemany(
            "INSERT INTO stock(item, location, qty) VALUES (?, ?, ?) "
            "ON CONFLICT(item, location) DO UPDATE SET qty = excluded.qty",
            [(item, loc, qty) for loc, qty in writes],
        )

    # -- queries ---------------------------------------------------------------

    def stock(self, item: str | None = None, location: str | None = None) -> list[Result]:
        """On-hand rows, sorted by item then location; None means any."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT item, location, qty FROM stock "
                "WHERE (?1 IS NULL OR item = ?1) AND (?2 IS NULL OR location = ?2) "
                "ORDER BY item, location",
                (item, location),
            ).fetchall()
        return [{"item": i, "location": loc, "qty": q} for i, loc, q in rows]

    def journal(
        self, agent: str | None = None, since: int = 0, limit: int = 100
    ) -> tuple[list[Result], int]:
        """Entries after position ``since``, oldest first; and the ``since`` for the next page.

        Each entry is the stored movement plus ``pos`` and ``source`` (``agent``
        or ``ledger`` for the adjusts the ledger posts for count variances).
        """
        if not 0 <= since <= MAX_INT:
            raise ValueError(f"since: expected an integer from 0 to {MAX_INT}")
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit: expected an integer from 1 to {MAX_PAGE}")
        with self._read() as conn:
            rows = conn.execute(
                "SELECT pos, source, payload FROM journal "
                "WHERE pos > ?1 AND (?2 IS NULL OR agent = ?2) ORDER BY pos LIMIT ?3",
                (since, agent, limit),
            ).fetchall()
        entries = [
            {**json.loads(payload), "pos": pos, "source": source} for pos, source, payload in rows
        ]
        return entries, (rows[-1][0] if rows else since)


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _canonical(m: Movement) -> str:
    """``agent.model.dumps`` of the movement, refusing what JSON or UTF-8 cannot carry.

    NaN/Infinity and lone surrogates would be stored fine but could never be
    answered back as JSON, so they are refused here, per movement.
    """
    try:
        text = json.dumps(
            m.to_dict(), separators=(",", ":"), sort_keys=True, ensure_ascii=False, allow_nan=False
        )
    except ValueError as exc:
        raise _Rejected("movement: numbers must be finite (no NaN or Infinity)") from exc
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _Rejected("movement: text is not valid Unicode (a lone surrogate)") from exc
    return text


def _deltas(m: Movement) -> list[tuple[str, int]]:
    """How a movement other than a count changes on-hand, location by location."""
    if m.kind in ("receive", "return"):
        assert m.to is not None
        return [(m.to, m.qty)]
    if m.kind == "ship":
        assert m.from_ is not None
        return [(m.from_, -m.qty)]
    out = []
    if m.from_:
        out.append((m.from_, -m.qty))
    if m.to:
        out.append((m.to, m.qty))
    return out  # transfer: both; adjust: the one it names


def _on_hand(conn: sqlite3.Connection, item: str, location: str) -> int:
    row = conn.execute(
        "SELECT qty FROM stock WHERE item = ? AND location = ?", (item, location)
    ).fetchone()
    return 0 if row is None else int(row[0])


def _new_on_hand(
    conn: sqlite3.Connection, item: str, deltas: list[tuple[str, int]]
) -> list[tuple[str, int]]:
    """The on-hand each location will have. Negative is allowed (a ship happened);
    beyond ±MAX_INT is not, so SQLite never silently turns a sum into a float."""
    totals: dict[str, int] = {}
    for loc, delta in deltas:
        totals[loc] = totals.get(loc, _on_hand(conn, item, loc)) + delta
    for loc, qty in totals.items():
        if abs(qty) > MAX_INT:
            raise _Rejected(f"on-hand of this item at {loc!r} would exceed {MAX_INT}")
    return list(totals.items())


def _variance(count: Movement, before: int) -> Movement:
    """The adjust the ledger posts so the journal explains the count's change to on-hand."""
    variance = count.qty - before
    assert count.to is not None
    return replace(
        count,
        id=str(uuid.uuid5(VARIANCE_NS, count.id)),
        seq=None,
        kind="adjust",
        qty=abs(variance),
        from_=None if variance > 0 else count.to,
        to=count.to if variance > 0 else None,
        reason="count-variance",
        evidence={"caused_by": count.id, "counted": count.qty, "on_hand_before": before},
    )


def _journal(
    conn: sqlite3.Connection,
    m: Movement,
    payload: str,
    at: str,
    source: str,
    caused_by: str | None,
) -> None:
    conn.execute(
        "INSERT INTO journal(id, agent, seq, kind, item, qty, from_loc, to_loc, payload, "
        "received_at, source, caused_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            m.id,
            m.agent,
            m.seq,
            m.kind,
            m.item.key(),
            m.qty,
            m.from_,
            m.to,
            payload,
            at,
            source,
            caused_by,
        ),
    )


def _echo_id(raw: object) -> str | None:
    """The movement's id as sent, if it is text we can send back; else None."""
    mid = raw.get("id") if isinstance(raw, Mapping) else None
    if not isinstance(mid, str) or len(mid) > MAX_TEXT:
        return None
    try:
        mid.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return mid


def _reason(exc: BaseException) -> str:
    """A short, always-encodable reason (messages may quote what the client sent)."""
    if isinstance(exc, RecursionError):
        return "movement: nested too deeply"
    text = str(exc).encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= _REASON_MAX else text[: _REASON_MAX - 1] + "…"
