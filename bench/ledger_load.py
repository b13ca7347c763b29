"""Agents posting to ledger processes over real HTTP, and what the ledger then holds.

Shared by bench.ledger and the ledger's concurrency tests. Each simulated agent
is one httpx client that behaves as the agent's sync does where it matters
here: a batch is sent until it gets a 200 (any connection error or 5xx means
the same batch again, at the next ledger URL, after Retry-After capped short),
and every answer must say ``applied`` or ``duplicate`` for each movement.
With ``hot=True`` (the tests) items and locations are few and shared by all
agents, so batches really contend for the same on-hand rows; otherwise (the
benchmark) each agent works its own dock over a pool of 1,000 items, with
transfers into one shared location, as a site does.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from ledger.store import SqlStore
from ledger.store.base import iter_journal

ITEMS = [f"0950600013{n:04d}" for n in range(1000)]
HOT_ITEMS = 4
LOCATIONS = ["DOCK-1", "DOCK-2", "A-01"]


@dataclass
class LoadResult:
    sent: dict[str, list[str]] = field(default_factory=dict)  # agent -> its movement ids
    latencies_ms: list[float] = field(default_factory=list)  # each batch, first try to 200
    errors_5xx: int = 0  # 5xx answers, 503 included
    unavailable: int = 0  # of which 503 with Retry-After
    unavailable_without_retry_after: int = 0
    transport_errors: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0

    @property
    def movements(self) -> int:
        return sum(len(ids) for ids in self.sent.values())


def movements_for(agent: str, n: int, seed: int = 0, hot: bool = True) -> list[dict[str, Any]]:
    """``n`` movements of ``agent`` with seq 1..n: receives, transfers and ships."""
    out = []
    docks = LOCATIONS[:2] if hot else [f"DOCK-{seed}", f"DOCK-{seed}"]
    for seq in range(1, n + 1):
        k = seq + seed
        item = {"gtin": ITEMS[k % HOT_ITEMS if hot else (seed * 7919 + seq) % len(ITEMS)]}
        kind = ("receive", "receive", "transfer", "ship")[k % 4]
        locs: dict[str, str] = {}
        if kind == "receive":
            locs["to"] = docks[k % 2]
        elif kind == "ship":
            locs["from"] = docks[(k + 1) % 2]
        else:
            locs["from"], locs["to"] = docks[k % 2], LOCATIONS[2]
        out.append(
            {
                "id": str(uuid.uuid4()),
                "agent": agent,
                "seq": seq,
                "kind": kind,
                "item": item,
                "qty": 1 + k % 3,
                "station": "s",
                "device": "d",
                "observed_at": "2026-05-01T10:00:00Z",
                "clock": {"synced": True, "boot_id": "b", "mono_ns": seq},
                **locs,
            }
        )
    return out


def batches_of(
    movements: Sequence[dict[str, Any]], size: int, overlap: bool, resend: bool
) -> list[list[dict[str, Any]]]:
    """Windows of ``size``; overlapping by half when asked; each sent twice when asked
    (the second time as if the first answer had been lost)."""
    step = max(1, size // 2) if overlap else size
    out = []
    for start in range(0, len(movements), step):
        window = list(movements[start : start + size])
        out.append(window)
        if resend:
            out.append(window)
        if start + size >= len(movements):
            break
    return out


async def run_agents(
    urls: Sequence[str],
    tokens: dict[str, str],
    per_agent: int,
    batch_size: int,
    *,
    overlap: bool = False,
    resend: bool = False,
    retry_cap_s: float = 0.2,
    timeout_s: float = 30.0,
    hot: bool = True,
) -> LoadResult:
    """Every agent in ``tokens`` delivers ``per_agent`` movements, all at once."""
    result = LoadResult()
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)

    async def agent_run(i: int, agent: str, token: str) -> None:
        movements = movements_for(agent, per_agent, seed=i, hot=hot)
        result.sent[agent] = [m["id"] for m in movements]
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(headers=headers, timeout=timeout_s, limits=limits) as client:
            turn = i
            for n, batch in enumerate(batches_of(movements, batch_size, overlap, resend)):
                body = {"agent": agent, "movements": batch}
                started = time.perf_counter()
                while True:
                    url = urls[turn % len(urls)]
                    turn += 1
                    try:
                        r = await client.post(
                            f"{url}/v1/movements",
                            json=body,
                            headers={"Idempotency-Key": f'"{agent}-{n}"'},
                        )
                    except httpx.TransportError:
                        result.transport_errors += 1
                        await asyncio.sleep(0.02)
                        continue
                    if r.status_code == 200:
                        break
                    if r.status_code >= 500:
                        result.errors_5xx += 1
                        if r.status_code == 503:
                            result.unavailable += 1
                            if "retry-after" not in r.headers:
                                result.unavailable_without_retry_after += 1
                        wait = float(r.headers.get("retry-after", "0.05"))
                        await asyncio.sleep(min(wait, retry_cap_s))
                        continue
                    raise AssertionError(f"{agent}: ledger answered {r.status_code}: {r.text}")
                result.latencies_ms.append((time.perf_counter() - started) * 1000)
                for res in r.json()["results"]:
                    result.statuses[res["status"]] += 1

    started = time.perf_counter()
    await asyncio.gather(*(agent_run(i, a, t) for i, (a, t) in enumerate(tokens.items())))
    result.elapsed_s = time.perf_counter() - started
    return result


@dataclass(frozen=True, slots=True)
class Audit:
    lost: int
    duplicated: int
    on_hand_matches_journal: bool
    journaled: int


def audit(store: SqlStore, sent: dict[str, list[str]]) -> Audit:
    """What the ledger holds against what was sent: every id once, on-hand = Σ journal."""
    seen: Counter[str] = Counter()
    expected: Counter[tuple[str, str]] = Counter()
    for entry in iter_journal(store):
        seen[entry["id"]] += 1
        item = entry["item"]["gtin"]
        if entry.get("from"):
            expected[(item, entry["from"])] -= entry["qty"]
        if entry.get("to"):
            expected[(item, entry["to"])] += entry["qty"]
    ids = {i for agent_ids in sent.values() for i in agent_ids}
    lost = sum(1 for i in ids if seen[i] == 0)
    duplicated = sum(n - 1 for n in seen.values() if n > 1)
    actual = {(r["item"], r["location"]): r["qty"] for r in store.stock() if r["qty"]}
    wanted = {k: v for k, v in expected.items() if v}
    return Audit(lost, duplicated, actual == wanted, sum(seen.values()))


def make_agents(store: SqlStore, n: int, prefix: str = "agent") -> dict[str, str]:
    return {f"{prefix}-{i:02d}": store.add_agent(f"{prefix}-{i:02d}") for i in range(n)}
