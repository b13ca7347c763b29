"""Which stream events a journalled movement makes (see ``accounts`` for the postings)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal, NamedTuple

from ledger.valuation.accounts import Accounts
from ledger.valuation.core import Basis, Event, Key
from ledger.valuation.engine import StreamId
from ledger.valuation.money import micros


class Moved(NamedTuple):
    """What valuation reads of a journal row (a named tuple: one is made per movement)."""

    id: str
    pos: int
    kind: str
    item: str
    qty: int
    from_: str | None
    to: str | None
    reason: str | None
    observed_at: str
    unit_cost: Decimal | None = None
    standard_cost: Decimal | None = None


_UTC_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?Z$")


def event_time(observed_at: str, fallback: str) -> str:
    """``observed_at`` as UTC text that sorts in time order; ``fallback`` (the time the
    ledger received it) if it is not an ISO 8601 time. A time without offset is UTC; one
    in UTC with a ``Z`` (what agents send) is taken as written, its fraction padded."""
    fast = _UTC_RE.match(observed_at)  # what agents send: UTC with a Z, no parsing needed
    if fast is not None:
        return f"{fast.group(1)}.{(fast.group(2) or '').ljust(6, '0')}Z"
    for text in (observed_at, fallback):
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            continue
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return fallback


def stream_events(m: Moved, key: Key, acc: Accounts) -> list[tuple[StreamId, Event]]:
    """The events of one movement, out before in; none for counts (their variance
    adjusts carry the change), count_close, and a transfer to where it came from."""

    std = None if m.standard_cost is None else micros(m.standard_cost)
    cost = None if m.unit_cost is None else micros(m.unit_cost)

    def ev(
        direction: Literal["in", "out"], counter: str, basis: Basis = "receipt", **kw: Any
    ) -> Event:
        return Event(key, m.id, direction, m.qty, counter, standard_cost=std, basis=basis, **kw)

    if m.kind == "receive" and m.to:
        return [((m.item, m.to), ev("in", acc.grni, unit_cost=cost))]
    if m.kind == "return" and m.to:
        return [((m.item, m.to), ev("in", acc.cogs, "restock", unit_cost=cost))]
    if m.kind == "ship" and m.from_:
        return [((m.item, m.from_), ev("out", acc.cogs))]
    if m.kind == "adjust" and m.from_:
        account = acc.writeoff if m.reason == "damaged" else acc.shrinkage
        return [((m.item, m.from_), ev("out", account))]
    if m.kind == "adjust" and m.to:
        return [((m.item, m.to), ev("in", acc.shrinkage, "found", unit_cost=cost))]
    if m.kind == "transfer" and m.from_ and m.to and m.from_ != m.to:
        return [
            ((m.item, m.from_), ev("out", acc.variance, counter_location=m.to, transfer=True)),
            ((m.item, m.to), ev("in", acc.inventory, counter_location=m.from_, transfer=True)),
        ]
    return []
