"""Booking rate into a real Tryton: movements/s from one agent's outbox through the
tryton sink (``python -m bench.tryton [--n N] [--batch B]``, JSON on stdout).

Builds the same initialised SQLite database as the tests (about a minute; pass
--template to reuse one), starts trytond on loopback and drains N receipts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


async def _drain(url: str, outbox: Path, n: int, batch: int) -> float:
    from agent.alarms import Alarms
    from agent.clock import Clock, Uuid7, utc_iso
    from agent.model import ClockStamp, Item, Movement
    from agent.outbox import Commit, Outbox
    from agent.sync import RetryPolicy, Syncer
    from agent.sync.tryton import TrytonPlaces, TrytonSink

    clock, ids = Clock(), Uuid7()
    stamp = ClockStamp(synced=True, boot_id=clock.boot_id, mono_ns=clock.mono_ns())
    box = Outbox.open(outbox, "bench", 1 << 28)
    box.store_blocking(
        [
            Commit(None, [Movement(id=ids.new(), agent="bench", kind="receive",
                                   item=Item(sku="SKU-1"), qty=1, to="DOCK-7", station="s",
                                   device="d", observed_at=utc_iso(clock.wall()), clock=stamp)])
            for _ in range(n)
        ]
    )  # fmt: skip
    sink = TrytonSink(url, "edgetally", "edgetally-agent", "agent-password-1",
                      TrytonPlaces({"DOCK-7": "DOCK-7"}))  # fmt: skip
    syncer = Syncer(box, sink, RetryPolicy(0.05, 1, 1), Alarms(), batch_max=batch)
    try:
        start = time.perf_counter()
        await syncer.drain()
        return time.perf_counter() - start
    finally:
        await sink.aclose()
        box.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--template", type=Path, help="an initialised database to reuse")
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests" / "tryton"))
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    from harness import free_port
    from tryton_server import TrytonServer, build_template

    with tempfile.TemporaryDirectory() as tmp:
        work = args.dir or Path(tmp)
        template = args.template or build_template(work / "template", ["SKU-1"])
        server = TrytonServer(work / "run", template, free_port())
        server.start()
        try:
            seconds = asyncio.run(_drain(server.root, work / "outbox.db", args.n, args.batch))
        finally:
            server.stop()
    print(json.dumps({"bench": "tryton", "movements": args.n, "batch_max": args.batch,
                      "seconds": round(seconds, 3),
                      "movements_per_s": round(args.n / seconds, 1)}))  # fmt: skip


if __name__ == "__main__":
    main()
