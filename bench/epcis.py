"""Drain rate through the epcis sink against the http-ledger sink, side by side, one run:
``python -m bench.epcis [--n N] [--batch B] [--rounds R] [--dir DIR]`` (JSON on stdout).

Two fresh reference ledger processes on loopback (SQLite); two outboxes holding
the same N movements (receipts of lots, counted, and of serialised units, one
each in turn). Each round drains a fresh copy through the http-ledger sink into
one ledger (``/v1/movements``) and through the epcis sink into the other
(``/epcis/capture`` and its job), alternating which goes first. Reports the
median movements/s of each, their ratio, and lost / duplicated movement ids
in each ledger's journal (the bar: 0 and 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _movements(n: int, agent: str) -> list[Any]:
    from agent.clock import Uuid7
    from agent.model import ClockStamp, Item, Movement

    ids, stamp = Uuid7(), ClockStamp(True, "bench", 1)
    out = []
    for i in range(n):
        item = (
            Item(gtin="09506000134352", lot=f"L{i % 50}")
            if i % 2
            else Item(gtin="09506000134352", serial=f"S{i}")
        )
        out.append(
            Movement(id=ids.new(), agent=agent, kind="receive", item=item, qty=1 + i % 2,
                     to="DOCK-7", station="dock-7", device="d",
                     observed_at="2026-05-01T10:00:00.000000Z", clock=stamp)
        )  # fmt: skip
    return out


async def _drain(sink: Any, outbox: Path, movements: list[Any], agent: str, batch: int) -> float:
    from agent.alarms import Alarms
    from agent.outbox import Commit, Outbox
    from agent.sync import RetryPolicy, Syncer

    box = Outbox.open(outbox, agent, 1 << 30)
    try:
        box.store_blocking([Commit(None, [m]) for m in movements])
        syncer = Syncer(box, sink, RetryPolicy(0.05, 1, 1), Alarms(), batch_max=batch)
        start = time.perf_counter()
        await syncer.drain()
        seconds = time.perf_counter() - start
        if syncer.status.rejected:
            raise SystemExit(f"bench.epcis: {syncer.status.rejected} movements rejected")
        return seconds
    finally:
        await sink.aclose()
        box.close()


def _check(journal: list[dict[str, Any]], sent: set[str]) -> tuple[int, int]:
    counts = Counter(e["id"] for e in journal)
    return len(sent - set(counts)), sum(c - 1 for c in counts.values() if c > 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args()
    # stdout holds the JSON alone: the ledger processes inherit stdout for their logs,
    # so it points at stderr while they run, and the result goes to the saved one.
    result = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    from harness import AGENT, LedgerProcess

    from agent.config.sinks import EpcisSinkConfig
    from agent.sync import EpcisSink, HttpLedgerSink

    rates: dict[str, list[float]] = {"http_ledger": [], "epcis": []}
    lost = duplicated = 0
    with tempfile.TemporaryDirectory() as tmp:
        work = args.dir or Path(tmp)
        for r in range(args.rounds):
            movements = _movements(args.n, AGENT)
            sent = {m.id for m in movements}
            ledgers = {}
            for name in rates:
                (work / f"{name}-{r}").mkdir(parents=True)
                ledgers[name] = LedgerProcess(work / f"{name}-{r}")
                ledgers[name].start()
            try:
                order = list(rates) if r % 2 == 0 else list(reversed(rates))
                for name in order:
                    ledger = ledgers[name]
                    sink: Any = (
                        HttpLedgerSink(ledger.url, ledger.token)
                        if name == "http_ledger"
                        else EpcisSink(
                            EpcisSinkConfig(
                                url=ledger.url + "/epcis",
                                stations={"dock-7": "urn:epc:id:sgln:9506000.13435.7"},
                            ),
                            ledger.token,
                        )
                    )
                    outbox = work / f"{name}-{r}" / "outbox.db"
                    seconds = asyncio.run(_drain(sink, outbox, movements, AGENT, args.batch))
                    rates[name].append(args.n / seconds)
                    missing, twice = _check(ledger.journal(), sent)
                    lost, duplicated = lost + missing, duplicated + twice
            finally:
                for ledger in ledgers.values():
                    ledger.stop()
    http_rate = statistics.median(rates["http_ledger"])
    epcis_rate = statistics.median(rates["epcis"])
    print(json.dumps({
        "bench": "epcis", "movements": args.n, "batch_max": args.batch, "rounds": args.rounds,
        "http_ledger_per_s": round(http_rate, 1), "epcis_per_s": round(epcis_rate, 1),
        "epcis_vs_http_ledger": round(epcis_rate / http_rate, 3),
        "lost": lost, "duplicated": duplicated,
    }), file=result, flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
