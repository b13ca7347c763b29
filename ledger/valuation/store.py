"""Valuation in the ledger's database: what ``SqlStore.apply_batch`` runs after the
journal rows of a batch are in, in the same transaction.

SQL in the subset both backends speak (``%s`` placeholders). Amounts are
integers of minor units (in an entry's JSON lines, and SQLite INTEGER or
PostgreSQL NUMERIC(20,0) in the streams); unit costs and exact values are
decimal text in SQLite and NUMERIC in PostgreSQL. On
PostgreSQL a batch first takes a transaction advisory lock per item it moves,
in item order: a re-cost can reach other locations of the same item (through
transfers) but never another item, so two batches never value the same stream
at once and never deadlock on each other (the quantity side took all its row
locks before).

New events go to ``val_staging``, a table in arrival order with no index but
its row id, and are folded into ``val_events`` (kept in stream and costing
order, for replays) ``FOLD_AT`` rows at a time. A batch touches dozens of
streams; writing each new event straight into its stream's place in
``val_events`` dirtied one page per stream per batch, and on SQLite every
dirty page is written whole to the WAL at commit and again at checkpoint:
``bench.valuation`` measured 158 MB written for 10,000 movements, 8 times the
journal's. Staged, the same batch appends to a few pages, and a fold writes
each stream's page once per ``FOLD_AT`` rows. Reading a stream's events (only
a late event does) reads both tables; the staging table is small enough to
scan. On PostgreSQL a fold takes the fold lock exclusively, and only when no
batch holds it shared (every valuing batch does, before its item locks), so a
fold never moves rows from under another batch's re-cost and never waits.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any

import orjson

from ledger.valuation.alerts import REORDER_COLUMNS, reorder_rows
from ledger.valuation.alerts import check as check_alerts
from ledger.valuation.core import Ctx, Event, Key, Line, Method, State, apply
from ledger.valuation.db import Db
from ledger.valuation.engine import Posted, Run, Stored, StreamId, Written, run
from ledger.valuation.events import Moved, event_time, stream_events
from ledger.valuation.settings import ValuationSettings, from_rows, to_rows

# The state after every 32nd event of a stream is kept: a late event replays at most 31
# events to find its starting state, and the in-order path writes a state 1 time in 32.
SNAPSHOT_EVERY = 32
_VALUED = ("receive", "return", "ship", "transfer", "adjust")
_CHUNK = 500
Query = tuple[str, Sequence[Any]]


def load_settings(db: Db) -> ValuationSettings:
    return from_rows([(str(k), str(v)) for k, v in db.rows("SELECT key, value FROM val_settings")])


def save_settings(db: Db, s: ValuationSettings) -> None:
    db.many(
        "INSERT INTO val_settings(key, value) VALUES (%s, %s) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        to_rows(s),
    )


# Any fixed numbers: the first key of the per-item advisory locks, and the fold's lock
# (see the module docstring).
_ITEM_LOCK = 0x76616C75  # "valu"
_FOLD_LOCK = 0x76616C66  # "valf"
# Staged events folded into val_events at once: the late path scans at most about this
# many staged rows per stream it replays; the in-order path folds once per FOLD_AT events.
FOLD_AT = 4096
_EVENT_COLUMNS = "item, location, okey, pos, direction, movement, event, state"
_EVENT_TYPES = "text text text bigint text text text text"


def checker(settings: ValuationSettings) -> Callable[[Any], None]:
    """Refuses a movement whose cost is in another currency than the ledger's."""
    currency = settings.currency

    def check(m: Any) -> None:
        if m.currency is not None and m.currency != currency:
            raise ValueError(
                f"movement.currency {m.currency!r}: this ledger values in {currency} "
                "(it keeps no exchange rates); send the cost in that currency"
            )

    return check


# Stream states by the exact text stored: a head whose stored text is the text last
# written (by this process) is copied, not parsed again (parsing a FIFO stream's layers
# is most of what valuing an in-order movement costs). Equal text is the same state,
# so another process's write or a rolled-back batch can never make it wrong.
StateCache = dict[StreamId, tuple[str, State]]


class _SqlSource:
    def __init__(
        self,
        db: Db,
        ctx: Callable[[StreamId], Ctx],
        method: Callable[[str], Method],
        cache: StateCache | None = None,
    ) -> None:
        self.cache: StateCache = {} if cache is None else cache
        self.db = db
        self.ctx = ctx
        self.method = method
        # each loaded stream's provisional issues, to write only what changed
        self.backlog: dict[StreamId, dict[str, int]] = {}
        self.heads: dict[StreamId, tuple[str, Key]] = {}
        self.prefetched: set[str] = set()
        # each stored event read, by (stream, key, direction): its staging row id, or None
        # when it lives in val_events (where its primary key finds it)
        self.staged: dict[tuple[StreamId, Key, str], int | None] = {}

    @staticmethod
    def prefetch_queries(items: Sequence[str]) -> list[Query]:
        """Every stream of ``items`` (a re-cost never leaves its item)."""
        return _chunked(
            "SELECT item, location, state, okey, pos FROM val_streams WHERE item", items
        )

    def prefetched_rows(self, items: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        for item, loc, state, okey, pos in rows:
            self.heads[(str(item), str(loc))] = (state, (str(okey), int(pos)))
        self.prefetched.update(items)

    def head(self, stream: StreamId) -> tuple[State, Key] | None:
        if stream[0] in self.prefetched:
            found = self.heads.get(stream)
        else:
            rows = self.db.rows(
                "SELECT state, okey, pos FROM val_streams WHERE item = %s AND location = %s",
                stream,
            )
            found = None if not rows else (rows[0][0], (str(rows[0][1]), int(rows[0][2])))
        if found is None:
            return None
        state, (okey, pos) = found
        # Taken out of the cache, not copied: the engine changes it in place, and `_write`
        # puts it back with its new text; a batch rolled back after that leaves text the
        # database does not hold, so the entry is never used again.
        cached = self.cache.pop(stream, None)
        loaded = cached[1] if cached and cached[0] == state else State.from_json(state)
        self.backlog[stream] = _issues(loaded)
        return loaded, (str(okey), int(pos))

    def before(self, stream: StreamId, key: Key) -> State | None:
        """The last snapshot before ``key``, brought up to ``key`` by replaying the events
        between (their lines were posted already: only the state is wanted)."""
        before = "AND (okey < %s OR (okey = %s AND pos < %s))"
        rows = self.db.rows(
            f"SELECT okey, pos, direction, state FROM ({_union(before, 'state IS NOT NULL')}) "
            "AS e ORDER BY okey DESC, pos DESC, direction ASC LIMIT 1",
            (*stream, key[0], key[0], key[1]) * 2,
        )
        if rows:
            okey, pos, direction, text = rows[0]
            state, since = State.from_json(text), (str(okey), int(pos), str(direction))
        else:
            first = self.db.rows(
                f"SELECT count(*) FROM ({_union(before)}) AS e",
                (*stream, key[0], key[0], key[1]) * 2,
            )
            if not int(first[0][0]):
                return None
            state, since = State(self.method(stream[0])), None
        rows = self.db.rows(
            f"SELECT okey, pos, direction, movement, event FROM ({_union(before)}) AS e "
            "ORDER BY okey, pos, direction DESC",
            (*stream, key[0], key[0], key[1]) * 2,
        )
        ctx = self.ctx(stream)
        for o, p, d, m, ev in rows:
            k = (str(o), int(p))
            # the snapshot is the state after (since): only the events after it apply
            if since is not None and (k, d != "out") <= (since[:2], since[2] != "out"):
                continue
            apply(state, Event.from_json(k, m, ev), ctx)
        return state

    def stored_from(self, stream: StreamId, key: Key) -> list[Stored]:
        rows = self.db.rows(
            f"SELECT okey, pos, direction, movement, event, staged FROM "
            f"({_union('AND (okey > %s OR (okey = %s AND pos >= %s))')}) AS e "
            "ORDER BY okey, pos, direction DESC",
            (*stream, key[0], key[0], key[1]) * 2,
        )
        posted = self._posted(stream, sorted({str(r[3]) for r in rows}))
        out = []
        for o, p, d, m, ev, staged in rows:
            k = (str(o), int(p))
            self.staged[(stream, k, str(d))] = None if staged is None else int(staged)
            out.append(Stored(Event.from_json(k, m, ev), posted.get(str(m), {})))
        return out

    def _posted(self, stream: StreamId, movements: list[str]) -> dict[str, Posted]:
        """What each movement has posted for ``stream`` in all: its entries' lines, summed
        (the entries are the record; an event keeps no copy)."""
        out: dict[str, Posted] = {}
        for start in range(0, len(movements), _CHUNK):
            chunk = movements[start : start + _CHUNK]
            marks = ",".join(["%s"] * len(chunk))
            for movement, lines in self.db.rows(
                "SELECT movement, lines FROM entries WHERE item = %s AND stream_location = %s "
                f"AND movement IN ({marks})",
                [*stream, *chunk],
            ):
                posted = out.setdefault(str(movement), {})
                for account, location, amount, corrects in orjson.loads(lines):
                    k = (account, location, corrects)
                    posted[k] = posted.get(k, 0) + int(amount)
        return {m: {k: v for k, v in p.items() if v} for m, p in out.items()}


def _union(where: str, also: str = "") -> str:
    """A stream's events in both tables (``item``, ``location`` and ``where``'s parameters,
    twice): folded ones in ``val_events``, the rest still in ``val_staging``."""
    extra = f" AND {also}" if also else ""
    pick = "okey, pos, direction, movement, event, state"
    return (
        f"SELECT {pick}, NULL AS staged FROM val_events "
        f"WHERE item = %s AND location = %s {where}{extra} UNION ALL "
        f"SELECT {pick}, id AS staged FROM val_staging "
        f"WHERE item = %s AND location = %s {where}{extra}"
    )


def post(
    db: Db,
    rows: Sequence[Any],
    posted_at: str,
    dialect: str,
    cache: StateCache | None = None,
    fold_at: int = FOLD_AT,
    settings: ValuationSettings | None = None,
) -> Run | None:
    """Value the journal rows just inserted (``domain.JournalRow``s) and post their entries;
    ``settings`` as the caller read them in this transaction, else read here."""
    rows = [r for r in rows if r.kind in _VALUED]
    if not rows:
        return None
    names = sorted({r.item for r in rows})
    first: list[Query]
    if dialect == "postgresql":
        # The fold lock first (the module docstring says why): alone if a fold is due and
        # no batch holds it, else shared; CASE runs only the branch it takes. Then all the
        # batch's items, taken in item order (the subquery's), before what follows.
        shared = "(SELECT false FROM pg_advisory_xact_lock_shared(%s))"
        first = [
            (
                "SELECT CASE WHEN due THEN CASE WHEN pg_try_advisory_xact_lock(%s) THEN true "
                f"ELSE {shared} END ELSE {shared} END FROM (SELECT {_DUE} AS due) AS d",
                (_FOLD_LOCK, _FOLD_LOCK, _FOLD_LOCK, fold_at),
            ),
            (
                "SELECT pg_advisory_xact_lock(%s, hashtext(i)) "
                'FROM (SELECT i FROM unnest(%s::text[]) AS i ORDER BY i COLLATE "C") AS s',
                (_ITEM_LOCK, names),
            ),
        ]
    else:
        first = [(f"SELECT {_DUE}", (fold_at,))]
    # what the batch reads, in one round trip on PostgreSQL (after the locks)
    ids = [r.id for r in rows]
    plan: list[list[Query]] = [
        first,
        [] if settings is not None else [("SELECT key, value FROM val_settings", ())],
        _chunked("SELECT id, pos FROM journal WHERE id", ids),
        _chunked(
            f"SELECT item, standard_cost, method, {REORDER_COLUMNS} FROM val_items WHERE item",
            names,
        ),
        _SqlSource.prefetch_queries(names),
    ]
    found = iter(db.rows_all([q for part in plan for q in part]))
    got_rows = [[row for _ in part for row in next(found)] for part in plan]
    folding = bool(got_rows[0][0][0])
    if settings is None:
        settings = from_rows([(str(k), str(v)) for k, v in got_rows[1]])
    positions = {str(i): int(p) for i, p in got_rows[2]}
    items = _item_rows([row[:3] for row in got_rows[3]])
    reorder = reorder_rows([(row[0], *row[3:]) for row in got_rows[3]])
    new = []
    info: dict[str, tuple[str, str | None, str]] = {}
    for r in rows:
        if r.movement is not None:
            cost, reason, observed = r.movement.unit_cost, r.movement.reason, r.movement.observed_at
        else:
            payload = orjson.loads(r.payload)
            cost, reason = payload.get("unit_cost"), payload.get("reason")
            observed = payload.get("observed_at", "")
        std = items.get(r.item, (None, None))[0]
        m = Moved(
            id=r.id, pos=positions[r.id], kind=r.kind, item=r.item, qty=r.qty,
            from_=r.from_loc, to=r.to_loc, reason=reason, observed_at=observed,
            unit_cost=None if cost is None else Decimal(cost), standard_cost=std,
        )  # fmt: skip
        okey = event_time(m.observed_at, r.received_at)
        info[r.id] = (r.kind, m.reason, okey)
        new += stream_events(m, (okey, m.pos), settings.accounts)

    def method(item: str) -> Method:
        return items.get(item, (None, None))[1] or settings.method

    def ctx(stream: StreamId) -> Ctx:
        return Ctx(stream[1], settings.accounts.inventory, settings.places)

    source = _SqlSource(db, ctx, method, cache)
    source.prefetched_rows(names, got_rows[4])
    result = run(source, new, ctx, method, SNAPSHOT_EVERY)
    writes = _Writes(db)
    _write(
        writes, result, posted_at, info, source.backlog, source.cache, source.staged,
        set(source.heads),
    )  # fmt: skip
    if folding:
        _fold(writes)
    writes.flush()
    check_alerts(db, names, posted_at, reorder=reorder)
    return result


# At least FOLD_AT staged, or about: ids only grow between folds, which empty the table,
# so the span of ids counts the rows (or a few more, where a rollback left a gap) and is
# read off the ends of the primary key (a subquery each) instead of counting.
_DUE = (
    "coalesce((SELECT max(id) FROM val_staging) - (SELECT min(id) FROM val_staging) + 1, 0) >= %s"
)


def _fold(writes: _Writes) -> None:
    """Move every staged event into ``val_events``, in its order (pages filled in turn).
    Called with the fold lock held exclusively on PostgreSQL."""
    writes.run(
        f"INSERT INTO val_events({_EVENT_COLUMNS}) SELECT {_EVENT_COLUMNS} FROM val_staging "
        "ORDER BY item, location, okey, pos, direction"
    )
    writes.run("DELETE FROM val_staging")


class _Writes:
    """What a batch writes: on PostgreSQL queued and sent in one round trip when it is
    all known (`Db.run_all`; a round trip per statement was a tenth of a valued batch's
    time under load, each one waiting for the server to be scheduled), on SQLite run at
    once (no round trips there)."""

    def __init__(self, db: Db) -> None:
        self.db = db
        self.pg = getattr(db, "dialect", "") == "postgresql"
        self.queued: list[Query] = []

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        if self.pg:
            self.queued.append((sql, params))
        else:
            self.db.run(sql, params)

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """A statement per row (the late path's updates): at once, in order."""
        self.flush()
        self.db.many(sql, rows)

    def bulk(self, insert: str, types: str, rows: Sequence[Sequence[Any]], tail: str = "") -> None:
        """``insert`` of ``rows``: one executemany on SQLite; on PostgreSQL one statement
        over arrays (``unnest``), as the journal's insert does."""
        if not rows:
            return
        kinds = types.split()
        if not self.pg:
            marks = ", ".join(["%s"] * len(kinds))
            self.db.many(f"{insert} VALUES ({marks}) {tail}", rows)
            return
        columns = [list(col) for col in zip(*rows, strict=True)]
        for i, kind in enumerate(kinds):
            if kind == "numeric":
                columns[i] = [None if v is None else str(v) for v in columns[i]]
        # %b: arrays sent in binary (as the journal's insert does); in text every element
        # of an array of JSON is quoted and escaped, and parsed back on the server:
        # that was most of what a valued batch cost on PostgreSQL.
        arrays = ", ".join(f"%b::{kind}[]" for kind in kinds)
        self.queued.append((f"{insert} SELECT * FROM unnest({arrays}) {tail}", columns))

    def flush(self) -> None:
        if self.queued:
            queued, self.queued = self.queued, []
            self.db.run_all(queued)


def _chunked(head: str, values: Sequence[str]) -> list[Query]:
    """``head IN (...)`` over ``values``, a query per ``_CHUNK`` of them."""
    out: list[Query] = []
    for start in range(0, len(values), _CHUNK):
        chunk = list(values[start : start + _CHUNK])
        out.append((f"{head} IN ({','.join(['%s'] * len(chunk))})", chunk))
    return out


def _items(db: Db, items: list[str]) -> dict[str, tuple[Decimal | None, Method | None]]:
    q = _chunked("SELECT item, standard_cost, method FROM val_items WHERE item", items)
    return _item_rows([row for rows in db.rows_all(q) for row in rows])


def _item_rows(rows: Sequence[tuple[Any, ...]]) -> dict[str, tuple[Decimal | None, Method | None]]:
    return {
        str(item): (None if cost is None else Decimal(str(cost)), method)
        for item, cost, method in rows
    }


def _write(
    db: _Writes,
    result: Run,
    posted_at: str,
    info: dict[str, tuple[str, str | None, str]],
    backlog: dict[StreamId, dict[str, int]],
    cache: StateCache,
    stored: dict[tuple[StreamId, Key, str], int | None],
    existing: set[StreamId],
) -> None:
    new: list[tuple[Any, ...]] = []
    folded: list[tuple[Any, ...]] = []
    staged: list[tuple[Any, ...]] = []
    lines: list[tuple[Any, ...]] = []
    ids = entry_ids()
    for w in result.written:
        e = w.event
        row = (w.stream[0], w.stream[1], e.key[0], e.key[1], e.direction, e.movement,
               e.to_json(), w.state)  # fmt: skip
        where = None if w.new else stored.get((w.stream, e.key, e.direction))
        if w.new:
            new.append(row)
        elif where is None:  # in val_events: found by its key
            folded.append((*row[6:], *row[:5]))
        else:
            staged.append((*row[6:], where))
        if w.lines:
            lines += _entry_lines(w, posted_at, info.get(e.movement), ids)
    db.bulk(f"INSERT INTO val_staging({_EVENT_COLUMNS})", _EVENT_TYPES, new)
    if folded:
        db.many(
            "UPDATE val_events SET event = %s, state = %s WHERE item = %s "
            "AND location = %s AND okey = %s AND pos = %s AND direction = %s",
            folded,
        )
    if staged:
        db.many("UPDATE val_staging SET event = %s, state = %s WHERE id = %s", staged)
    if lines:
        db.bulk(
            "INSERT INTO entries(entry, movement, kind, reason, item, stream_location, type, "
            "lines, observed_at, posted_at)",
            "text text text text text text text text text text",
            lines,
        )
    heads = sorted(result.heads.items())
    texts = {s: st.to_json() for s, (st, _) in heads}
    for s, (st, _) in heads:
        cache[s] = (texts[s], st)  # the engine is done with it: the cache owns it now
    rows = [
        (s[0], s[1], texts[s], k[0], k[1], st.qty, str(st.value), st.posted) for s, (st, k) in heads
    ]
    if not db.pg:
        # SQLite: an upsert tries the insert first; most heads exist (the source read them)
        db.many(
            "UPDATE val_streams SET state = %s, okey = %s, pos = %s, qty = %s, value = %s, "
            "posted = %s WHERE item = %s AND location = %s",
            [(*r[2:], r[0], r[1]) for r in rows if (r[0], r[1]) in existing],
        )
        rows = [r for r in rows if (r[0], r[1]) not in existing]
    db.bulk(
        "INSERT INTO val_streams(item, location, state, okey, pos, qty, value, posted)",
        "text text text text bigint bigint numeric numeric",
        rows,
        "ON CONFLICT (item, location) DO UPDATE SET "
        "state = excluded.state, okey = excluded.okey, pos = excluded.pos, qty = excluded.qty, "
        "value = excluded.value, posted = excluded.posted",
    )
    gone, changed = [], []
    for s, (st, _) in heads:
        before, after = backlog.get(s, {}), _issues(st)
        gone += [(issue, *s) for issue in before if issue not in after]
        changed += [(issue, *s, q) for issue, q in after.items() if before.get(issue) != q]
    if gone and db.pg:  # one statement, as `bulk`
        db.run(
            "DELETE FROM val_provisional p USING unnest(%b::text[], %b::text[], %b::text[]) "
            "AS g(movement, item, location) WHERE p.movement = g.movement "
            "AND p.item = g.item AND p.location = g.location",
            [list(col) for col in zip(*gone, strict=True)],
        )
    elif gone:
        db.many(
            "DELETE FROM val_provisional WHERE movement = %s AND item = %s AND location = %s",
            gone,
        )
    db.bulk(
        "INSERT INTO val_provisional(movement, item, location, qty)",
        "text text text bigint",
        changed,
        "ON CONFLICT (movement, item, location) DO UPDATE SET qty = excluded.qty",
    )


def _issues(state: State) -> dict[str, int]:
    out: dict[str, int] = {}
    for b in state.backlog:
        out[b.issue] = out.get(b.issue, 0) + b.qty
    return out


def entry_ids() -> Iterator[str]:
    """Entry ids for one batch: version-4 UUID text from one random draw and a counter
    (uuid4() per entry was a tenth of the valued path's Python time)."""
    base = uuid.uuid4().hex[:24]  # the version and variant digits are in here
    for n in itertools.count():
        h = f"{base}{n:08x}"
        yield f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _entry_lines(
    w: Written, posted_at: str, info: tuple[str, str | None, str] | None, ids: Iterator[str]
) -> list[tuple[Any, ...]]:
    """A new event's lines are its entry (and one more for the corrections it makes);
    an old one's difference is one ``recost`` entry. Each entry balances, and is one row
    with its lines (``entry_lines`` shows them a row each): a row per line was half the
    valued path's writing."""
    kind, reason, okey = info if info is not None else ("", None, w.event.key[0])
    groups: dict[str, Sequence[Line]]
    if not w.new:
        groups = {"recost": w.lines}
    elif not any(ln.corrects for ln in w.lines):
        groups = {"post": w.lines}
    else:  # an inbound that corrects provisional issues: its corrections are an entry
        groups = {
            "post": [ln for ln in w.lines if not ln.corrects],
            "correct": [ln for ln in w.lines if ln.corrects],
        }
    out = []
    for entry_type, group in groups.items():
        if not group:
            continue
        assert sum(ln.amount for ln in group) == 0, group  # debits = credits, always
        lines = orjson.dumps(
            list(map(tuple, group))
        )  # a Line is [account, location, amount, corrects]
        out.append(
            (next(ids), w.event.movement, kind, reason, w.stream[0], w.stream[1], entry_type,
             lines.decode(), okey, posted_at)
        )  # fmt: skip
    return out
