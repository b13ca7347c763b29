"""What the dashboard shows, read through the store's public methods only.

The journal is read page by page (``LedgerStore.journal``); the agents are the
store's fleet view (``agents``) when the store has one, else what the journal
alone says (last movement's time, seq gaps). Plain dicts for the templates.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.store import MAX_PAGE

Entry = dict[str, Any]
FEED_SIZE = 25
HOURS = 12


def item_key(entry: Entry) -> str | None:
    item = entry.get("item") or {}
    for field in ("gtin", "sku", "sscc", "epc"):
        if item.get(field):
            return str(item[field])
    return None


def journal(store: Any, since: int = 0) -> list[Entry]:
    """Every entry after ``since``, oldest first."""
    out: list[Entry] = []
    while True:
        page, since = store.journal(None, since, MAX_PAGE)
        out.extend(page)
        if len(page) < MAX_PAGE:
            return out


def when(entry: Entry) -> datetime | None:
    try:
        return datetime.fromisoformat(str(entry.get("observed_at")).replace("Z", "+00:00"))
    except ValueError:
        return None


def deltas(entry: Entry) -> list[tuple[str, int]]:
    """How an entry changed on-hand; a count's change is its variance adjust's."""
    kind, qty = entry.get("kind"), int(entry.get("qty") or 0)
    src, dst = entry.get("from"), entry.get("to")
    if kind == "count":
        return []
    if kind in ("receive", "return"):
        return [(dst, qty)] if dst else []
    if kind == "ship":
        return [(src, -qty)] if src else []
    return [(loc, d) for loc, d in ((src, -qty), (dst, qty)) if loc]


def fleet(store: Any, entries: list[Entry], silent_after_s: float) -> list[dict[str, Any]]:
    """Per agent: last contact, highest seq, missing seqs, last error, silent or not."""
    agents = getattr(store, "agents", None)
    if agents is not None:  # the fleet view (issue 11): last contact as the ledger saw it
        return [a.to_dict() if hasattr(a, "to_dict") else dict(a) for a in agents(silent_after_s)]
    seqs: dict[str, set[int]] = defaultdict(set)
    last: dict[str, datetime] = {}
    for e in entries:
        agent = e.get("agent")
        if e.get("source") != "agent" or not agent:
            continue
        if isinstance(e.get("seq"), int):
            seqs[agent].add(e["seq"])
        at = when(e)
        if at is not None and (agent not in last or at > last[agent]):
            last[agent] = at
    now = datetime.now(UTC)
    out = []
    for agent in sorted(set(seqs) | set(last)):
        top = max(seqs[agent]) if seqs[agent] else None
        out.append(
            {
                "agent": agent,
                "last_contact": last[agent].isoformat() if agent in last else None,
                "highest_seq": top,
                "missing": 0 if top is None else top - len(seqs[agent]),
                "last_error": None,
                "silent": agent in last and (now - last[agent]).total_seconds() > silent_after_s,
            }
        )
    return out


def alarms(store: Any) -> list[dict[str, Any]]:
    """The ledger's own alarms (rejected, conflicting, silent) when the store keeps them."""
    read = getattr(store, "alarms", None)
    return list(read(20)) if read is not None else []


def per_hour(entries: list[Entry], now: datetime) -> dict[str, list[int]]:
    """Movements per hour per station over the last HOURS hours, oldest hour first."""
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS - 1)
    out: dict[str, list[int]] = {}
    for e in entries:
        at = when(e)
        if e.get("source") != "agent" or at is None or at < start:
            continue
        slot = int((at - start).total_seconds() // 3600)
        if 0 <= slot < HOURS:
            out.setdefault(str(e.get("station") or "-"), [0] * HOURS)[slot] += 1
    return dict(sorted(out.items()))


def item_history(entries: list[Entry], item: str) -> tuple[list[Entry], list[tuple[str, int]]]:
    """The item's journal and its total on hand after each entry (time, qty)."""
    mine = [e for e in entries if item_key(e) == item]
    total, series = 0, []
    for e in mine:
        total += sum(d for _, d in deltas(e))
        series.append((str(e.get("observed_at") or ""), total))
    return mine, series


def movement_counts(entries: list[Entry]) -> Counter[str]:
    return Counter(str(e.get("kind")) for e in entries)
