"""What a batch of movements does to the ledger, with no SQL and no connection.

Both backends run ``apply_batch`` inside their own transaction over a `Tx`: it
reads which ids are known and the on-hand it needs (the PostgreSQL backend locks
those rows, in key order, so concurrent batches never deadlock on them), decides
every result in Python, then writes the journal rows and the new on-hand. So
the backends differ only in SQL and connection handling, never in the rules.

Each movement id is applied at most once: it is unique in the journal. The same
id with the same canonical content is a ``duplicate``; with other content it is
a ``conflict`` (answered with a reason and alarmed, nothing overwritten).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from agent.model import MAX_TEXT, Movement
from ledger.count_close import CloseRefused, close_variances

# Quantities, on-hand and seq stay within what every JSON reader (JavaScript's
# included) holds exactly, and inside both backends' 64-bit integers.
MAX_INT = 2**53 - 1
MAX_PAGE = 1000
MAX_PAGE_BYTES = 4 * 1024 * 1024  # characters of journal JSON per page (a cut, not a refusal)
# Fixed for ever: the variance adjust of count X has id uuid5(VARIANCE_NS, X),
# so replaying a count can never post a second adjust.
VARIANCE_NS = uuid.UUID("6d1f4f3e-9a53-5c43-9d7e-2f0c1b8e7a51")
CONFLICT_REASON = "id already used for a different movement"
# What an agent hears when it sends an id another agent's movement holds. It
# must not confirm that the id exists (or whose it is), so it names neither;
# the truth goes to the ledger's alarms for the operator. It cannot look the
# same as "applied" without lying, so it says only what any refusal says.
FOREIGN_REASON = "movement refused by the ledger; it was not applied (see the ledger's alarms)"
_REASON_MAX = 300

Result = dict[str, Any]
StockKey = tuple[str, str]  # (item, location)


@dataclass(frozen=True, slots=True)
class JournalRow:
    id: str
    agent: str
    seq: int | None
    kind: str
    item: str
    qty: int
    from_loc: str | None
    to_loc: str | None
    payload: str
    received_at: str
    source: str  # "agent", or "ledger" for the adjusts it posts for count variances
    caused_by: str | None
    # what ``payload`` says, parsed already (the valuation reads its cost and time)
    movement: Movement | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Alarm:
    """Something an operator at the centre must see (a conflicting duplicate)."""

    agent: str
    kind: str
    key: str  # with agent and kind, what makes the alarm one alarm however often it is seen
    detail: str


@dataclass(frozen=True, slots=True)
class AgentScope:
    """What the ledger holds about the posting agent before the batch: where it may
    move stock (empty: anywhere) and the highest seq journaled from it."""

    locations: frozenset[str] = frozenset()
    highest_seq: int | None = None


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    results: list[Result]
    alarms: list[Alarm]
    last_error: str | None  # the last refusal in the batch, for the fleet view
    regressions: int = 0  # movements applied with a seq at or below one seen before
    last_regression: str | None = None
    applied: list[JournalRow] = field(default_factory=list)  # what valuation posts for


class Raced(Exception):
    """Another transaction journaled one of our ids after we looked: run the batch again."""


class Tx(Protocol):
    """One open transaction of a backend."""

    def existing(self, ids: Sequence[str]) -> dict[str, str]:
        """The stored payload of each of ``ids`` that is already journaled."""

    def on_hand(self, keys: Sequence[StockKey]) -> dict[StockKey, int]:
        """On-hand of each key (0 when absent), held until the transaction ends."""

    def insert_journal(self, rows: Sequence[JournalRow]) -> int:
        """Insert rows whose id is new (ON CONFLICT DO NOTHING); how many went in."""

    def write_on_hand(self, rows: Sequence[tuple[str, str, int]]) -> None:
        """Set on-hand of (item, location) to qty."""

    def held_at(self, location: str) -> dict[StockKey, int]:
        """Every non-zero on-hand at ``location`` (a count_close), held until the end."""


class _Rejected(Exception):
    """A movement the ledger will not apply; the message is the reason sent back."""


@dataclass(frozen=True, slots=True)
class _Checked:
    movement: Movement
    payload: str


def apply_batch(
    tx: Tx,
    agent: str,
    raws: Sequence[object],
    received_at: str,
    scope: AgentScope | None = None,
    check: Callable[[Movement], None] | None = None,
) -> BatchOutcome:
    """One result per movement, in order; raises `Raced` if the batch must run again.

    ``check`` may refuse a valid movement (ValueError, the reason sent back):
    valuation refuses a cost in another currency than the ledger's.
    """
    scope = scope or AgentScope()
    checked = [_check(raw, agent, scope.locations, check) for raw in raws]
    valid = [c for c in checked if isinstance(c, _Checked)]
    wanted = {c.movement.id for c in valid} | {
        variance_id(c.movement.id) for c in valid if c.movement.kind == "count"
    }
    known = tx.existing(sorted(wanted))
    keys = sorted(
        {
            (c.movement.item.key() or "", loc)
            for c in valid
            if c.movement.id not in known and c.movement.kind != "count_close"
            for loc in _locations(c.movement)
        }
    )
    stock = tx.on_hand(keys)
    changed: set[StockKey] = set()
    results: list[Result] = []
    rows: list[JournalRow] = []
    alarms: list[Alarm] = []
    last_error: str | None = None
    top, regressions, last_regression = scope.highest_seq, 0, None
    for c in checked:
        if not isinstance(c, _Checked):
            results.append(c)
            last_error = c["reason"]
            continue
        m = c.movement
        if m.id in known and known[m.id] != c.payload and _owner(known[m.id]) != agent:
            detail = (
                f"agent {agent} sent movement id {m.id}, which is agent {_owner(known[m.id])}'s"
            )
            alarms.append(Alarm(agent, "foreign_id", m.id, detail))
            results.append({"id": m.id, "status": "rejected", "reason": FOREIGN_REASON})
            last_error = f"movement {m.id}: {FOREIGN_REASON}"
            continue
        if m.id in known:
            result = _same_or_conflict(m.id, known[m.id], c.payload)
            if result["status"] == "conflict":
                alarms.append(Alarm(agent, "conflict", m.id, f"movement {m.id}: {CONFLICT_REASON}"))
                last_error = f"movement {m.id}: {CONFLICT_REASON}"
            results.append(result)
            continue
        if m.kind == "count_close":
            closed = _close(tx, m, stock)
            if isinstance(closed, str):
                results.append({"id": m.id, "status": "rejected", "reason": closed})
                last_error = f"movement {m.id}: {closed}"
                continue
            rows.append(_row(m, c.payload, received_at, "agent", None))
            known[m.id] = c.payload
            for v in closed:
                rows.append(_row(v, canonical(v), received_at, "ledger", m.id))
                key = (v.item.key() or "", m.to or "")
                stock[key] = 0
                changed.add(key)
            results.append({"id": m.id, "status": "applied"})
            continue
        try:
            writes, variance = _plan(m, stock)
            if variance is not None and variance.id in known:
                raise _Rejected("the id of this count's variance adjust is already used")
        except _Rejected as exc:
            reason = _reason(exc)
            results.append({"id": m.id, "status": "rejected", "reason": reason})
            last_error = f"movement {m.id}: {reason}"
            continue
        rows.append(_row(m, c.payload, received_at, "agent", None))
        known[m.id] = c.payload
        if variance is not None:
            payload = canonical(variance)
            rows.append(_row(variance, payload, received_at, "ledger", m.id))
            known[variance.id] = payload
        for key, qty in writes:
            stock[key] = qty
            changed.add(key)
        results.append({"id": m.id, "status": "applied"})
        if m.seq is not None:
            if top is not None and m.seq <= top:
                regressions += 1
                last_regression = f"seq {m.seq} after {top} (movement {m.id})"
            top = m.seq if top is None else max(top, m.seq)
    if rows and tx.insert_journal(rows) != len(rows):
        raise Raced()
    tx.write_on_hand([(item, loc, stock[(item, loc)]) for item, loc in sorted(changed)])
    return BatchOutcome(results, alarms, last_error, regressions, last_regression, rows)


def _owner(payload: str) -> str | None:
    """The agent of a journaled movement (its stored payload)."""
    agent = json.loads(payload).get("agent")
    return agent if isinstance(agent, str) else None


def _close(tx: Tx, close: Movement, stock: dict[StockKey, int]) -> list[Movement] | str:
    """A count_close's variance adjusts (``ledger.count_close``), or why it is refused.

    What the location holds is the store's on-hand there with this batch's own
    changes (a count just before it in the batch) on top.
    """
    assert close.to is not None
    held = {**tx.held_at(close.to), **{k: q for k, q in stock.items() if k[1] == close.to}}
    for key, qty in held.items():
        stock.setdefault(key, qty)
    try:
        return close_variances(close, [(item, qty, None) for (item, _), qty in held.items()])
    except CloseRefused as exc:
        return _reason(exc)


def variance_id(count_id: str) -> str:
    return str(uuid.uuid5(VARIANCE_NS, count_id))


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def canonical(m: Movement) -> str:
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


def check_agent_id(agent: object) -> str:
    if not isinstance(agent, str) or not agent or len(agent) > MAX_TEXT:
        raise ValueError(f"agent: expected a non-empty string of at most {MAX_TEXT} chars")
    return agent


def _check(
    raw: object,
    agent: str,
    allowed: frozenset[str] = frozenset(),
    check: Callable[[Movement], None] | None = None,
) -> _Checked | Result:
    try:
        m = Movement.from_dict(raw)  # type: ignore[arg-type]  # it checks for a mapping
        payload = canonical(m)
        if m.agent != agent:
            raise _Rejected(f"movement.agent {m.agent!r} is not the agent of this token")
        if allowed:
            for name, loc in (("from", m.from_), ("to", m.to)):
                if loc and loc not in allowed:
                    raise _Rejected(
                        f"movement.{name} {loc!r}: agent {agent} may not move stock there "
                        f"(its locations: {', '.join(sorted(allowed))})"
                    )
        if m.qty > MAX_INT:
            raise _Rejected(f"movement.qty: expected at most {MAX_INT}")
        if m.seq is not None and m.seq > MAX_INT:
            raise _Rejected(f"movement.seq: expected at most {MAX_INT}")
        if check is not None:
            check(m)
    except (_Rejected, ValueError, TypeError, RecursionError) as exc:
        return {"id": _echo_id(raw), "status": "rejected", "reason": _reason(exc)}
    return _Checked(m, payload)


def _same_or_conflict(mid: str, stored: str, payload: str) -> Result:
    if stored == payload:
        return {"id": mid, "status": "duplicate"}
    return {"id": mid, "status": "conflict", "reason": CONFLICT_REASON}


def _locations(m: Movement) -> list[str]:
    return [loc for loc in (m.from_, m.to) if loc]


def _plan(
    m: Movement, stock: Mapping[StockKey, int]
) -> tuple[list[tuple[StockKey, int]], Movement | None]:
    """The on-hand each touched location will have, and a count's variance adjust."""
    item = m.item.key()
    assert item is not None  # Movement.from_dict requires a key
    if m.kind == "count":
        assert m.to is not None
        before = stock.get((item, m.to), 0)
        variance = _variance(m, before) if m.qty != before else None
        return [((item, m.to), m.qty)], variance
    totals: dict[StockKey, int] = {}
    for loc, delta in _deltas(m):
        key = (item, loc)
        totals[key] = totals.get(key, stock.get(key, 0)) + delta
    for (_, loc), qty in totals.items():
        if abs(qty) > MAX_INT:
            raise _Rejected(f"on-hand of this item at {loc!r} would exceed {MAX_INT}")
    return list(totals.items()), None


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


def _variance(count: Movement, before: int) -> Movement:
    """The adjust the ledger posts so the journal explains the count's change to on-hand."""
    variance = count.qty - before
    assert count.to is not None
    return replace(
        count,
        id=variance_id(count.id),
        seq=None,
        kind="adjust",
        qty=abs(variance),
        from_=None if variance > 0 else count.to,
        to=count.to if variance > 0 else None,
        reason="count-variance",
        evidence={"caused_by": count.id, "counted": count.qty, "on_hand_before": before},
    )


def _row(m: Movement, payload: str, at: str, source: str, caused_by: str | None) -> JournalRow:
    return JournalRow(
        m.id, m.agent, m.seq, m.kind, m.item.key() or "", m.qty, m.from_, m.to,
        payload, at, source, caused_by, m,
    )  # fmt: skip


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
