"""What both backends share: the store's public methods, written once over a tiny `Db`.

A backend supplies connections (`_transact` runs a function in one write
transaction, retried when the database asks; `_reading` gives a read-only
one) and a `Tx` for `domain.apply_batch`. The SQL here is the common subset of
SQLite and PostgreSQL, written with ``%s`` placeholders (the SQLite backend
turns them into ``?``).
"""

from __future__ import annotations

import json
import logging
import secrets
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, TypeVar

from agent.model import MAX_TEXT
from ledger.epcis import store as epcis_store
from ledger.passwords import hash_password, verify_password
from ledger.schema import LedgerError, utcnow
from ledger.store.domain import (
    MAX_INT,
    MAX_PAGE,
    MAX_PAGE_BYTES,
    AgentScope,
    Alarm,
    BatchOutcome,
    Result,
    Tx,
    apply_batch,
    check_agent_id,
    sha256,
)
from ledger.valuation.store import FOLD_AT, StateCache
from ledger.valuation.store import checker as valuation_checker
from ledger.valuation.store import load_settings as load_valuation_settings
from ledger.valuation.store import post as post_valuation

log = logging.getLogger("edgetally.ledger")
T = TypeVar("T")
MAX_GAPS = 100  # gap ranges listed per agent; `missing` still counts them all


class LedgerUnavailable(LedgerError):
    """The database is down, busy or full: the ledger's trouble, worth a retry (503)."""


class Db(Protocol):
    dialect: str  # "sqlite" or "postgresql", for the little SQL they do not share

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def run(self, sql: str, params: Sequence[Any] = ()) -> int: ...
    def many(self, sql: str, params: Sequence[Sequence[Any]]) -> None: ...
    def rows_all(self, queries: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple[Any, ...]]]:
        """Each query's rows, in order; on PostgreSQL in one round trip."""

    def run_all(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """Each statement, in order; on PostgreSQL in one round trip."""


AGENT, READER = "agent", "reader"


@dataclass(frozen=True, slots=True)
class TokenInfo:
    agent: str  # the agent's id, or the reader's name
    fingerprint: str  # the first hex digits of the token's sha256: tells tokens apart
    created_at: str
    revoked_at: str | None
    role: str = AGENT  # "agent": posts as its agent, reads its own journal; "reader": reads all


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request's token (or dashboard session) is: an agent, or a reader."""

    name: str
    role: str

    @property
    def reader(self) -> bool:
        return self.role == READER


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """One agent as the centre sees it (the fleet view)."""

    agent: str
    last_contact: str | None
    highest_seq: int | None
    missing: int  # seq numbers below highest_seq that never arrived
    gaps: list[list[int]]  # the first MAX_GAPS missing ranges, [first, last]
    movements_last_hour: int
    last_error: str | None
    last_error_at: str | None
    active_tokens: int
    silent: bool  # no contact for longer than the silence window
    seq_regressions: int = 0  # movements applied with a seq at or below one seen before
    last_regression: str | None = None
    locations: list[str] | None = None  # where it may move stock; None: anywhere

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def iso(when: datetime) -> str:
    return when.isoformat(timespec="microseconds").replace("+00:00", "Z")


class SqlStore(ABC):
    """Journal, on-hand, tokens and the fleet view over a backend's connections."""

    name: str  # what the messages call this store ("ledger /path/ledger.db")
    # Post the valuation with every batch; bench.valuation turns it off on its own store
    # to measure the quantity-only ledger side by side.
    valuing: bool = True
    # Staged valuation events folded at once (``ledger.valuation.store``); tests fold often.
    fold_at: int = FOLD_AT

    # -- what a backend supplies ------------------------------------------------

    @abstractmethod
    def _transact(self, work: Callable[[Db], T]) -> T:
        """Run ``work`` in one write transaction, again if the database asks."""

    @abstractmethod
    def _reading(self) -> AbstractContextManager[Db]:
        """A read-only connection."""

    @abstractmethod
    def _tx(self, db: Db) -> Tx:
        """The domain's view of an open write transaction."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self: T) -> T:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- tokens ----------------------------------------------------------------

    def add_agent(self, agent: str, locations: Sequence[str] | None = None) -> str:
        """Create or replace the agent's token (``token rotate``); only its sha256 is kept.
        With ``locations``, the agent may move stock only there."""
        token = self.rotate_token(agent)
        if locations is not None:
            self.set_locations(agent, locations)
        return token

    def create_token(self, agent: str, role: str = AGENT) -> str:
        """A first token for a new agent (or reader); one that has one is told to rotate."""
        check_agent_id(agent)

        def work(db: Db) -> str:
            if _active_tokens(db, agent, role):
                raise LedgerError(f"{role} {agent!r} already has a token; rotate it instead")
            return _new_token(db, agent, role)

        return self._transact(work)

    def rotate_token(self, agent: str, role: str = AGENT) -> str:
        """Revoke the agent's (or reader's) tokens and issue a new one, in one transaction."""
        check_agent_id(agent)

        def work(db: Db) -> str:
            _revoke(db, agent, role)
            return _new_token(db, agent, role)

        return self._transact(work)

    def revoke_token(self, agent: str, role: str = AGENT) -> int:
        """Revoke every token of the agent (or reader); how many were active."""
        check_agent_id(agent)
        return self._transact(lambda db: _revoke(db, agent, role))

    def tokens(self) -> list[TokenInfo]:
        with self._reading() as db:
            rows = db.rows(
                "SELECT agent, token_sha256, created_at, revoked_at, role FROM tokens "
                "ORDER BY role, agent, id"
            )
        return [TokenInfo(a, h[:12], c, r, role) for a, h, c, r, role in rows]

    def principal_for_token(self, token: str) -> Principal | None:
        """Looked up on every request, so a revoked token is refused at once by every process."""
        with self._reading() as db:
            rows = db.rows(
                "SELECT agent, role FROM tokens WHERE token_sha256 = %s AND revoked_at IS NULL",
                (sha256(token),),
            )
        return None if not rows else Principal(str(rows[0][0]), str(rows[0][1]))

    def agent_for_token(self, token: str) -> str | None:
        """The agent of an agent token (a reader's token is no agent's)."""
        who = self.principal_for_token(token)
        return None if who is None or who.reader else who.name

    # -- where an agent may move stock (issue 18) --------------------------------

    def set_locations(self, agent: str, locations: Sequence[str] | None) -> None:
        """Limit the agent to ``locations``; None or empty: anywhere (small sites)."""
        check_agent_id(agent)
        wanted = sorted(set(locations or ()))
        for loc in wanted:
            if not isinstance(loc, str) or not loc or len(loc) > MAX_TEXT or loc != loc.strip():
                raise LedgerError(f"location {loc!r}: expected a non-empty location code")

        def work(db: Db) -> None:
            _ensure_agent(db, agent)
            db.run("DELETE FROM agent_locations WHERE agent = %s", (agent,))
            if wanted:
                db.many(
                    "INSERT INTO agent_locations(agent, location) VALUES (%s, %s)",
                    [(agent, loc) for loc in wanted],
                )

        self._transact(work)

    def locations(self, agent: str) -> list[str] | None:
        """Where the agent may move stock; None: anywhere."""
        with self._reading() as db:
            return _locations(db, agent) or None

    # -- dashboard users and sessions (issue 13) --------------------------------

    def add_user(self, name: str, password: str) -> None:
        """Create the user or set a new password (which ends the user's sessions)."""
        if not isinstance(name, str) or not name or len(name) > MAX_TEXT or name != name.strip():
            raise ValueError(f"user name: expected non-empty text of at most {MAX_TEXT} chars")
        hashed = hash_password(password)

        def work(db: Db) -> None:
            db.run(
                "INSERT INTO users(name, password_hash, created_at) VALUES (%s, %s, %s) "
                "ON CONFLICT(name) DO UPDATE SET password_hash = excluded.password_hash",
                (name, hashed, utcnow()),
            )
            db.run("DELETE FROM sessions WHERE user_name = %s", (name,))

        self._transact(work)

    def login(self, name: str, password: str, ttl_s: float) -> str | None:
        """A new session token for the right password, else None; only its sha256 is kept."""
        with self._reading() as db:
            rows = db.rows("SELECT password_hash FROM users WHERE name = %s", (name,))
        if not verify_password(password, str(rows[0][0]) if rows else None):
            return None
        token = secrets.token_urlsafe(32)
        now = time.time()

        def work(db: Db) -> None:
            db.run("DELETE FROM sessions WHERE expires_at < %s", (now,))
            db.run(
                "INSERT INTO sessions(token_sha256, user_name, expires_at) VALUES (%s, %s, %s)",
                (sha256(token), name, now + ttl_s),
            )

        self._transact(work)
        return token

    def session_user(self, token: str, end: bool = False) -> str | None:
        """The user of a live session token; with ``end``, the session ends (log out)."""
        if end:
            self._transact(
                lambda db: db.run("DELETE FROM sessions WHERE token_sha256 = %s", (sha256(token),))
            )
            return None
        with self._reading() as db:
            rows = db.rows(
                "SELECT user_name FROM sessions WHERE token_sha256 = %s AND expires_at >= %s",
                (sha256(token), time.time()),
            )
        return None if not rows else str(rows[0][0])

    # -- movements -------------------------------------------------------------

    def apply_batch(self, agent: str, movements: Sequence[object]) -> list[Result]:
        """Apply a batch in one transaction; one result per movement, in order.

        A movement the ledger refuses is answered ``rejected`` (or ``conflict``)
        and does not touch the others; anything unexpected rolls the whole batch back.
        """

        def work(db: Db) -> BatchOutcome:
            at = utcnow()
            outcome = self._apply(db, agent, movements, at)
            _record(db, agent, at, outcome)
            return outcome

        outcome = self._transact(work)
        for alarm in outcome.alarms:
            log.warning("ledger alarm: %s from agent %s: %s", alarm.kind, alarm.agent, alarm.detail)
        return outcome.results

    def _apply(self, db: Db, agent: str, movements: Sequence[object], at: str) -> BatchOutcome:
        """`apply_batch` with the agent's scope (its locations, its highest seq) and, when
        the ledger values stock, the valuation's check and postings, in ``db``'s transaction.
        Every way in (``/v1/movements``, EPCIS capture) books through here."""
        top = db.rows(
            "SELECT max(seq) FROM journal WHERE agent = %s",
            (agent,),  # the ledger's have none
        )[0][0]
        scope = AgentScope(frozenset(_locations(db, agent)), None if top is None else int(top))
        settings = load_valuation_settings(db) if self.valuing else None
        check = None if settings is None else valuation_checker(settings)
        outcome = apply_batch(self._tx(db), agent, movements, at, scope, check)
        if self.valuing:
            post_valuation(
                db, outcome.applied, at, db.dialect, self._state_cache(), self.fold_at, settings
            )
        return outcome

    # -- for ledger.valuation (its SQL lives there) ------------------------------

    def _state_cache(self) -> StateCache:
        """This store's cache of stream states (see ``ledger.valuation.store``)."""
        cache: StateCache | None = self.__dict__.get("_val_states")
        if cache is None:
            cache = self.__dict__["_val_states"] = {}
        return cache

    def read(self, work: Callable[[Db], T]) -> T:
        """Run ``work`` on a read-only connection."""
        with self._reading() as db:
            return work(db)

    def write(self, work: Callable[[Db], T]) -> T:
        """Run ``work`` in one write transaction."""
        return self._transact(work)

    # -- EPCIS 2.0 capture and query (ledger/epcis) ---------------------------------

    def epcis_capture(
        self, agent: str, events: Sequence[object], behaviour: str = "rollback"
    ) -> dict[str, Any]:
        """Capture a document's events as one job; the job as ``GET /epcis/capture/{id}`` shows it.

        ``rollback`` (the standard's default): one error and nothing is kept;
        ``proceed``: what can be captured is, the rest are the job's errors.
        """
        if behaviour not in epcis_store.BEHAVIOURS:
            raise ValueError(
                f"GS1-Capture-Error-Behaviour: expected rollback or proceed, got {behaviour!r}"
            )
        created = utcnow()
        prepared = epcis_store.prepare(events, agent, created)
        capture_id = uuid.uuid4().hex

        def work(db: Db) -> epcis_store.CaptureOutcome:
            at = utcnow()
            outcome = epcis_store.capture(
                db, self._tx(db), agent, prepared, capture_id, at,
                lambda movements: self._apply(db, agent, movements, at),
            )  # fmt: skip
            if outcome.errors and behaviour == "rollback":
                raise epcis_store.RolledBack(outcome)
            epcis_store.insert_job(db, capture_id, agent, created, at, behaviour, outcome)
            _record(db, agent, at, outcome.batch)
            return outcome

        try:
            self._transact(work)
        except epcis_store.RolledBack as rolled:
            kept = epcis_store.CaptureOutcome(errors=rolled.outcome.errors)
            self._transact(
                lambda db: epcis_store.insert_job(
                    db, capture_id, agent, created, utcnow(), behaviour, kept
                )
            )
        job = self.epcis_job(capture_id, agent)
        assert job is not None
        return job

    def epcis_job(self, capture_id: str, agent: str) -> dict[str, Any] | None:
        with self._reading() as db:
            return epcis_store.read_job(db, capture_id, agent)

    def epcis_events(self, query: epcis_store.EventQuery) -> tuple[list[Result], int | None]:
        with self._reading() as db:
            return epcis_store.query_events(db, query)

    # -- queries ---------------------------------------------------------------

    def stock(self, item: str | None = None, location: str | None = None) -> list[Result]:
        """On-hand rows, sorted by item then location; None means any."""
        with self._reading() as db:
            rows = db.rows(
                "SELECT item, location, qty FROM stock "
                "WHERE (CAST(%s AS TEXT) IS NULL OR item = %s) "
                "AND (CAST(%s AS TEXT) IS NULL OR location = %s) "
                "ORDER BY item, location",
                (item, item, location, location),
            )
        return [{"item": i, "location": loc, "qty": int(q)} for i, loc, q in rows]

    def journal(
        self, agent: str | None = None, since: int = 0, limit: int = 100
    ) -> tuple[list[Result], int]:
        """Entries after position ``since``, oldest first; and the ``since`` for the next page.

        A page stops at ``limit`` entries or at about MAX_PAGE_BYTES of JSON, whichever
        comes first: a page of large movements could otherwise be hundreds of MB.

        Each entry is the stored movement plus ``pos`` and ``source`` (``agent``
        or ``ledger`` for the adjusts the ledger posts for count variances).
        """
        if not 0 <= since <= MAX_INT:
            raise ValueError(f"since: expected an integer from 0 to {MAX_INT}")
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit: expected an integer from 1 to {MAX_PAGE}")
        with self._reading() as db:
            # A prefix of the page: entries are added while the JSON before each is under
            # MAX_PAGE_BYTES (so one entry always fits), counted in the database.
            rows = db.rows(
                "SELECT pos, source, payload FROM (SELECT pos, source, payload, "
                "sum(length(payload)) OVER (ORDER BY pos) - length(payload) AS before "
                "FROM journal WHERE pos > %s AND (CAST(%s AS TEXT) IS NULL OR agent = %s) "
                "ORDER BY pos LIMIT %s) page WHERE before < %s ORDER BY pos",
                (since, agent, agent, limit, MAX_PAGE_BYTES),
            )
        entries = [
            {**json.loads(payload), "pos": int(pos), "source": source}
            for pos, source, payload in rows
        ]
        return entries, (int(rows[-1][0]) if rows else since)

    def caused_by(self, movement_id: str) -> str | None:
        """The count a ledger-posted adjust explains, if it is one."""
        with self._reading() as db:
            rows = db.rows("SELECT caused_by FROM journal WHERE id = %s", (movement_id,))
        return None if not rows else rows[0][0]

    def agents(self, silent_after_s: float, now: datetime | None = None) -> list[AgentInfo]:
        """The fleet view: every agent that has or had a token, or has posted."""
        now = now or datetime.now(UTC)
        hour_ago = iso(now - timedelta(hours=1))
        silent_before = iso(now - timedelta(seconds=silent_after_s))
        with self._reading() as db:
            rows = db.rows(
                "SELECT a.agent, a.last_contact, a.last_error, a.last_error_at, "
                "a.seq_regressions, a.last_regression, "
                "(SELECT max(seq) FROM journal j WHERE j.agent = a.agent AND j.source = 'agent'), "
                "(SELECT count(DISTINCT seq) FROM journal j "
                " WHERE j.agent = a.agent AND j.source = 'agent'), "
                "(SELECT count(*) FROM journal j WHERE j.agent = a.agent "
                " AND j.source = 'agent' AND j.received_at >= %s), "
                "(SELECT count(*) FROM tokens t WHERE t.agent = a.agent AND t.role = 'agent' "
                " AND t.revoked_at IS NULL) "
                "FROM agents a ORDER BY a.agent",
                (hour_ago,),
            )
            out = []
            for (
                agent, contact, error, error_at, regressions, last_regression,
                top, distinct, last_hour, active,
            ) in rows:  # fmt: skip
                top = None if top is None else int(top)
                missing = 0 if top is None else top - int(distinct)
                out.append(
                    AgentInfo(
                        agent=agent,
                        last_contact=contact,
                        highest_seq=top,
                        missing=missing,
                        gaps=_gaps(db, agent) if missing else [],
                        movements_last_hour=int(last_hour),
                        last_error=error,
                        last_error_at=error_at,
                        active_tokens=int(active),
                        silent=contact is not None and contact < silent_before,
                        seq_regressions=int(regressions),
                        last_regression=last_regression,
                        locations=_locations(db, agent) or None,
                    )
                )
        return out

    def check_silence(self, silent_after_s: float, now: datetime | None = None) -> list[Alarm]:
        """Raise (once per silence) an alarm for each agent silent past the window."""
        silent = [a for a in self.agents(silent_after_s, now) if a.silent]
        alarms = [
            Alarm(
                a.agent,
                "silent",
                a.last_contact or "",
                f"no contact since {a.last_contact} (window {silent_after_s:g} s)",
            )
            for a in silent
        ]
        raised = self._transact(lambda db: _raise_alarms(db, alarms)) if alarms else []
        for alarm in raised:
            log.warning("ledger alarm: %s from agent %s: %s", alarm.kind, alarm.agent, alarm.detail)
        return raised

    def alarms(self, limit: int = 100) -> list[Result]:
        """The newest alarms first."""
        with self._reading() as db:
            rows = db.rows(
                "SELECT at, agent, kind, detail FROM alarms ORDER BY id DESC LIMIT %s", (limit,)
            )
        return [{"at": at, "agent": a, "kind": k, "detail": d} for at, a, k, d in rows]


def _active_tokens(db: Db, agent: str, role: str) -> int:
    rows = db.rows(
        "SELECT count(*) FROM tokens WHERE agent = %s AND role = %s AND revoked_at IS NULL",
        (agent, role),
    )
    return int(rows[0][0])


def _new_token(db: Db, agent: str, role: str) -> str:
    if role not in (AGENT, READER):
        raise ValueError(f"token role: expected {AGENT!r} or {READER!r}, got {role!r}")
    token = secrets.token_urlsafe(32)
    if role == AGENT:
        _ensure_agent(db, agent)
    db.run(
        "INSERT INTO tokens(agent, token_sha256, created_at, role) VALUES (%s, %s, %s, %s)",
        (agent, sha256(token), utcnow(), role),
    )
    return token


def _revoke(db: Db, agent: str, role: str) -> int:
    return db.run(
        "UPDATE tokens SET revoked_at = %s WHERE agent = %s AND role = %s AND revoked_at IS NULL",
        (utcnow(), agent, role),
    )


def _locations(db: Db, agent: str) -> list[str]:
    rows = db.rows(
        "SELECT location FROM agent_locations WHERE agent = %s ORDER BY location", (agent,)
    )
    return [str(r[0]) for r in rows]


def _ensure_agent(db: Db, agent: str) -> None:
    db.run("INSERT INTO agents(agent) VALUES (%s) ON CONFLICT (agent) DO NOTHING", (agent,))


def _record(db: Db, agent: str, at: str, outcome: BatchOutcome) -> None:
    """Last contact, last error and seq regressions for the fleet view (one statement);
    alarms for conflicts."""
    db.run(
        "INSERT INTO agents(agent, last_contact, last_error, last_error_at, seq_regressions, "
        "last_regression) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (agent) DO UPDATE SET "
        "last_contact = excluded.last_contact, "
        "last_error = coalesce(excluded.last_error, agents.last_error), "
        "last_error_at = coalesce(excluded.last_error_at, agents.last_error_at), "
        "seq_regressions = agents.seq_regressions + excluded.seq_regressions, "
        "last_regression = coalesce(excluded.last_regression, agents.last_regression)",
        (
            agent,
            at,
            outcome.last_error,
            None if outcome.last_error is None else at,
            outcome.regressions,
            outcome.last_regression,
        ),
    )
    if outcome.alarms:
        _raise_alarms(db, outcome.alarms)


def _raise_alarms(db: Db, alarms: Sequence[Alarm]) -> list[Alarm]:
    """Insert the alarms not raised before; return those that are new."""
    new = []
    at = utcnow()
    for alarm in alarms:
        if db.run(
            "INSERT INTO alarms(at, agent, kind, key, detail) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (agent, kind, key) DO NOTHING",
            (at, alarm.agent, alarm.kind, alarm.key, alarm.detail),
        ):
            new.append(alarm)
    return new


def _gaps(db: Db, agent: str) -> list[list[int]]:
    """Missing seq ranges: before the first seq received, and between received ones."""
    rows = db.rows(
        "SELECT seq, nxt FROM (SELECT seq, LEAD(seq) OVER (ORDER BY seq) AS nxt FROM "
        "(SELECT DISTINCT seq FROM journal WHERE agent = %s AND source = 'agent' "
        "AND seq IS NOT NULL) s) t WHERE nxt > seq + 1 ORDER BY seq LIMIT %s",
        (agent, MAX_GAPS),
    )
    first = db.rows("SELECT min(seq) FROM journal WHERE agent = %s AND source = 'agent'", (agent,))[
        0
    ][0]
    gaps = [[1, int(first) - 1]] if first is not None and int(first) > 1 else []
    gaps += [[int(seq) + 1, int(nxt) - 1] for seq, nxt in rows]
    return gaps[:MAX_GAPS]


def iter_journal(store: SqlStore) -> Iterator[Result]:
    """Every journal entry, page by page."""
    since = 0
    while True:
        page, since = store.journal(None, since, MAX_PAGE)
        if not page:
            return
        yield from page
