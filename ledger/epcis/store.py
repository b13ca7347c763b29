"""Captured EPCIS events and capture jobs, in the ledger's own database and transaction.

A capture runs in one transaction with the movements it books: the events'
rows (``epcis_events``, unique on ``event_id``), their EPCs (``epcis_event_epcs``,
for ``MATCH_epc``) and the job (``epcis_captures``). So an event is captured
exactly when its movement is journaled, and a resend after a lost answer finds
it: the same eventID with the same content is a duplicate (captured, nothing
booked twice); with other content it is that event's error.

Capture is synchronous: by the time ``POST /epcis/capture`` answers 202 the
job has finished, and ``GET /epcis/capture/{id}`` reports it. The REST
bindings allow that (a job may finish before it is first asked about).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ledger.epcis.convert import Converted, EventRefused, convert
from ledger.store.domain import BatchOutcome, Raced, Tx

if TYPE_CHECKING:
    from ledger.store.base import Db

BEHAVIOURS = ("rollback", "proceed")
VALIDATION = "epcisException:ValidationException"
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Prepared:
    """One event of the document, read before the transaction: a movement or why not."""

    index: int
    event_id: str | None
    converted: Converted | None
    error: str | None
    payload: str  # the event as stored and answered to queries (with recordTime)


@dataclass
class CaptureOutcome:
    errors: list[dict[str, Any]] = field(default_factory=list)
    captured: int = 0
    duplicates: list[str] = field(default_factory=list)
    batch: BatchOutcome = field(default_factory=lambda: BatchOutcome([], [], None))


class RolledBack(Exception):
    """``rollback`` behaviour and at least one error: nothing of the document is kept."""

    def __init__(self, outcome: CaptureOutcome) -> None:
        super().__init__("capture rolled back")
        self.outcome = outcome


def prepare(events: Sequence[object], agent: str, record_time: str) -> list[Prepared]:
    out = []
    for index, event in enumerate(events):
        eid = event.get("eventID") if isinstance(event, dict) else None
        eid = eid if isinstance(eid, str) and len(eid) <= 512 and _utf8(eid) else None
        converted: Converted | None = None
        payload, error = "", None
        try:
            converted = convert(event, agent)
            assert isinstance(event, dict)
            payload = json.dumps({**event, "recordTime": record_time}, ensure_ascii=False)
            if not _utf8(payload):
                raise EventRefused("event: text that is not valid Unicode (a lone surrogate)")
        except EventRefused as exc:
            converted, error = None, _text(str(exc))
        except RecursionError:
            converted, error = None, "event: nested too deeply"
        out.append(Prepared(index, eid, converted, error, payload))
    return out


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(reason: str) -> str:
    """A reason that can be answered as JSON (it may quote what the client sent)."""
    return reason.encode("utf-8", "backslashreplace").decode("utf-8")[:400]


def problem(p: Prepared, detail: str) -> dict[str, Any]:
    """An RFC 7807 body per event: ``instance`` is its eventID (or where it sits)."""
    return {
        "type": VALIDATION,
        "title": "Event not captured",
        "status": 400,
        "detail": detail,
        "instance": p.event_id or f"#/epcisBody/eventList/{p.index}",
        "edgetally:index": p.index,
    }


def capture(
    db: Db,
    tx: Tx,
    agent: str,
    prepared: Sequence[Prepared],
    capture_id: str,
    at: str,
    book: Callable[[Sequence[object]], BatchOutcome],
) -> CaptureOutcome:
    """Book the events' movements and keep the events; raises `Raced` to run again.

    ``book`` is the store's own booking (`apply_batch` with the agent's scope and the
    valuation), so a movement that arrives as an event is checked, costed and posted
    exactly as one sent to ``/v1/movements``."""
    outcome = CaptureOutcome()
    errors: dict[int, dict[str, Any]] = {
        p.index: problem(p, p.error) for p in prepared if p.error is not None
    }
    good = [p for p in prepared if p.converted is not None]
    known = _known(db, sorted({p.converted.event_id for p in good if p.converted}))
    fresh: list[Prepared] = []
    keep: list[Prepared] = []
    for p in good:
        c = p.converted
        assert c is not None
        prior = known.get(c.event_id)
        if prior is not None:
            if prior == c.content_sha256:
                outcome.duplicates.append(c.event_id)
            else:
                errors[p.index] = problem(p, "eventID already captured with other content")
            continue
        known[c.event_id] = c.content_sha256
        fresh.append(p)
    # The same movement may be in the journal already: the http-ledger sink sent it.
    journaled = tx.existing(sorted({p.converted.movement.id for p in fresh if p.converted}))
    to_apply: list[Prepared] = []
    for p in fresh:
        c = p.converted
        assert c is not None
        stored = journaled.get(c.movement.id)
        if stored is None:
            to_apply.append(p)
        elif _same_movement(stored, c):
            outcome.duplicates.append(c.event_id)
            keep.append(p)
        else:
            errors[p.index] = problem(
                p, f"movement {c.movement.id} is in the journal already, with other content"
            )
    if to_apply:
        movements = [p.converted.movement.to_dict() for p in to_apply if p.converted]
        outcome.batch = book(movements)
        for p, result in zip(to_apply, outcome.batch.results, strict=True):
            assert p.converted is not None
            if result["status"] == "applied":
                keep.append(p)
                outcome.captured += 1
            elif result["status"] == "duplicate":
                keep.append(p)
                outcome.duplicates.append(p.converted.event_id)
            else:
                errors[p.index] = problem(p, result.get("reason") or result["status"])
    _insert_events(db, agent, keep, capture_id)
    outcome.errors = [errors[i] for i in sorted(errors)]
    return outcome


def insert_job(
    db: Db, capture_id: str, agent: str, created_at: str, finished_at: str, behaviour: str,
    outcome: CaptureOutcome,
) -> None:  # fmt: skip
    db.run(
        "INSERT INTO epcis_captures(id, agent, created_at, finished_at, behaviour, success, "
        "captured, duplicates, errors) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            capture_id, agent, created_at, finished_at, behaviour, int(not outcome.errors),
            outcome.captured, json.dumps(outcome.duplicates), json.dumps(outcome.errors),
        ),
    )  # fmt: skip


def read_job(db: Db, capture_id: str, agent: str) -> dict[str, Any] | None:
    """The job as the REST bindings show it; only to the agent that posted it."""
    rows = db.rows(
        "SELECT id, created_at, finished_at, behaviour, success, captured, duplicates, errors "
        "FROM epcis_captures WHERE id = %s AND agent = %s",
        (capture_id, agent),
    )
    if not rows:
        return None
    cid, created, finished, behaviour, success, captured, duplicates, errors = rows[0]
    return {
        "captureID": cid,
        "createdAt": created,
        "finishedAt": finished,
        "running": False,
        "success": bool(success),
        "captureErrorBehaviour": behaviour,
        "errors": json.loads(errors),
        "edgetally:captured": int(captured),
        "edgetally:duplicates": json.loads(duplicates),
    }


@dataclass(frozen=True, slots=True)
class EventQuery:
    """The SimpleEventQuery parameters the ledger answers (values are OR-ed per parameter)."""

    event_types: tuple[str, ...] = ()
    biz_steps: tuple[str, ...] = ()
    ge_event_time: str | None = None
    lt_event_time: str | None = None
    match_epc: tuple[str, ...] = ()
    match_epc_class: tuple[str, ...] = ()
    after: int = 0
    per_page: int = 100


def query_events(db: Db, q: EventQuery) -> tuple[list[dict[str, Any]], int | None]:
    """Matching events in capture order, and the position to continue after (or None)."""
    where: list[str] = ["pos > %s"]
    params: list[object] = [q.after]

    def any_of(column: str, values: tuple[str, ...]) -> None:
        if values:
            where.append(f"{column} IN ({', '.join(['%s'] * len(values))})")
            params.extend(values)

    any_of("event_type", q.event_types)
    any_of("biz_step", q.biz_steps)
    if q.ge_event_time is not None:
        where.append("event_time >= %s")
        params.append(q.ge_event_time)
    if q.lt_event_time is not None:
        where.append("event_time < %s")
        params.append(q.lt_event_time)
    for kind, patterns in (("epc", q.match_epc), ("class", q.match_epc_class)):
        if patterns:
            tests = []
            for pattern in patterns:
                for like in _likes(pattern, kind):
                    tests.append("e.epc LIKE %s ESCAPE '!'")
                    params.append(like)
            where.append(
                "event_id IN (SELECT e.event_id FROM epcis_event_epcs e "
                f"WHERE e.kind = '{kind}' AND ({' OR '.join(tests)}))"
            )
    params.append(q.per_page + 1)
    rows = db.rows(
        f"SELECT pos, payload FROM epcis_events WHERE {' AND '.join(where)} ORDER BY pos LIMIT %s",
        params,
    )
    more = len(rows) > q.per_page
    rows = rows[: q.per_page]
    return [json.loads(p) for _, p in rows], (int(rows[-1][0]) if more else None)


def _likes(pattern: str, kind: str) -> list[str]:
    """An EPC, or a pattern ending in ``*``, as LIKE patterns: ``urn:epc:idpat:sgtin:CP.IR.*``
    matches the SGTINs of that product (MATCH_epc) or its LGTINs (MATCH_epcClass)."""
    escaped = pattern.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    if escaped.endswith("*"):
        escaped = escaped[:-1] + "%"
    idpat = "urn:epc:idpat:sgtin:"
    if not escaped.startswith(idpat):
        return [escaped]
    rest = escaped[len(idpat) :]
    if kind == "epc":
        return ["urn:epc:id:sgtin:" + rest]
    return [escaped, "urn:epc:class:lgtin:" + rest]


def _known(db: Db, event_ids: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for start in range(0, len(event_ids), _CHUNK):
        chunk = event_ids[start : start + _CHUNK]
        marks = ", ".join(["%s"] * len(chunk))
        out.update(
            (str(e), str(h))
            for e, h in db.rows(
                f"SELECT event_id, content_sha256 FROM epcis_events WHERE event_id IN ({marks})",
                chunk,
            )
        )
    return out


def _insert_events(db: Db, agent: str, keep: Sequence[Prepared], capture_id: str) -> None:
    rows, epcs = [], []
    for p in keep:
        c = p.converted
        assert c is not None
        rows.append(
            (c.event_id, c.movement.id, agent, "ObjectEvent", c.biz_step, c.event_time,
             c.content_sha256, p.payload, capture_id)
        )  # fmt: skip
        epcs += [(c.event_id, "epc", e) for e in dict.fromkeys(c.epcs)]
        epcs += [(c.event_id, "class", e) for e in dict.fromkeys(c.classes)]
    inserted = 0
    for row in rows:
        inserted += db.run(
            "INSERT INTO epcis_events(event_id, movement_id, agent, event_type, biz_step, "
            "event_time, content_sha256, payload, capture_id) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING",
            row,
        )
    if inserted != len(rows):
        raise Raced()  # another capture kept one of these events after we looked
    if epcs:
        db.many(
            "INSERT INTO epcis_event_epcs(event_id, kind, epc) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            epcs,
        )


def _same_movement(stored: str, c: Converted) -> bool:
    """Whether the journal's movement moves what the event moves (ids aside, the same stock)."""
    s = json.loads(stored)
    item = s.get("item") or {}
    key = item.get("gtin") or item.get("sku") or item.get("sscc") or item.get("epc")
    m = c.movement
    return (s.get("kind"), key, s.get("qty"), s.get("from"), s.get("to")) == (
        m.kind, m.item.key(), m.qty, m.from_, m.to,
    )  # fmt: skip
