"""What valuation costs the ledger: the same workload with and without it, side by side.

    python -m bench.valuation [--movements 20000] [--batch 100] [--rounds 3] [--pg] [--dir D]

One agent's movements (receipts with a unit cost, transfers, ships, returns,
count shortfalls through adjusts; 50 items over 3 locations, in event-time
order, as much going out of each location as comes in: a site in steady
state) applied straight to a store (no HTTP: the ledger's own cost) in batches
of ``--batch``. Each round runs both arms on fresh databases, one after the
other: ``quantity_only`` (the store with valuation off: journal + on-hand) and
``valued`` (FIFO, every movement posts its entries). Medians over the rounds.

Where the valued arm's extra time goes (SQLite, 10,000 movements, CPU seconds,
before this round's last two changes: about 0.6 for the quantity side, 0.8
more for valuation): writing the entry lines (two rows per entry, 0.16), the
engine and `core.apply` (Decimal arithmetic, 0.24), building the rows and
their JSON (0.14), staging the events and the streams' heads (0.06). On SQLite
a batch's bytes matter as much as its CPU: every page a commit dirties is
written whole to the WAL and again at checkpoint. So new events are staged in
arrival order and folded into ``val_events`` 4,096 at a time (``FOLD_AT``):
158 MB written for 10,000 valued movements became 60 (the journal alone
writes 19). Then an entry became one row with its lines (half the insert CPU:
0.23 -> 0.11 s per 12,300 entries, measured alone), and an event stopped
keeping a copy of what it posted (a late event's replay sums its entries
instead): valued CPU 1.31 -> 1.19 s side by side. On PostgreSQL a batch's reads (item
locks, settings, positions, items, stream heads) go in one round trip. Then the engine
and ``core.apply`` counted in integer micro-units instead of ``Decimal``, and events,
lines and outcomes became named tuples (a frozen dataclass pays a call per field):
the engine's share went from about 24 to 15 µs a movement, and side by side, three
runs each under load, ratio 0.530 -> 0.608 (ratio_cpu 0.472 -> 0.529). What is left
of the valued arm's extra CPU is mostly SQLite's own: inserting the entries (about 8 µs
a movement), the streams' heads (3), the staged events (3), the fold (3).
On PostgreSQL, where each statement is a round trip that waits for the server
to be scheduled (most of a loaded machine's cost), valuation now adds two round
trips to a batch (was about eight): the fold-lock test with the reads, and the
writes in one pipeline; side by side under load 4 (4 runs each): ratio 0.488 -> 0.564.

``--pg`` runs the same on a throwaway PostgreSQL cluster too.

Output (JSON on stdout): ``movements_per_s_quantity_only``,
``movements_per_s_valued``, ``ratio`` (valued / quantity-only; target >= 0.5),
``cpu_us_per_movement_quantity_only``, ``cpu_us_per_movement_valued`` and
``ratio_cpu`` (this process's CPU: all of it on SQLite, the client's share on
PostgreSQL), and the same per backend under ``backends``. Progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.common import cpu_model, gtin14
from ledger.store import LedgerStore, SqlStore

AGENT = "bench"
LOCATIONS = ("DOCK-1", "A-01", "A-02")


def workload(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` movements in event-time order; deterministic for a seed."""
    items = [gtin14(f"950600013{k:04d}") for k in range(50)]
    out = []
    counts: dict[str, int] = {}
    for seq in range(1, n + 1):
        k = seq * 7919 + seed
        item = items[k % len(items)]
        # As much goes out of each location as comes in (a site in steady state), so
        # the FIFO layers a stream holds are the receipts still on its shelves.
        t = counts[item] = counts.get(item, 0) + 1  # this item's t-th movement
        kind = ("receive", "transfer", "ship", "receive", "transfer", "return", "ship", "adjust")[
            t % 8
        ]
        # a round of 8 uses one shelf and one quantity; each receipt has its own cost
        shelf, qty = LOCATIONS[1 + t // 8 % 2], 1 + t // 8 % 5
        where: dict[str, Any] = {}
        if kind == "receive":
            where = {"to": "DOCK-1", "unit_cost": f"{1 + k % 97}.{k % 100:02d}"}
        elif kind == "transfer":
            where = {"from": "DOCK-1", "to": shelf}
        elif kind == "ship":
            where = {"from": shelf}
        elif kind == "return":
            where = {"to": shelf, "reason": "restock"}
        else:
            where = {"from": shelf, "reason": "count-variance"}
        out.append(
            {
                "id": str(uuid.UUID(int=(seed << 64) + seq)),
                "agent": AGENT, "seq": seq, "kind": kind, "item": {"gtin": item},
                "qty": qty, "station": "s", "device": "d",
                "observed_at": f"2026-05-01T{seq // 3600 % 24:02d}:{seq // 60 % 60:02d}:"
                f"{seq % 60:02d}.{seq // 86400:06d}Z",
                "clock": {"synced": True, "boot_id": "b", "mono_ns": seq}, **where,
            }
        )  # fmt: skip
    return out


def one_arm(
    store: SqlStore, movements: Sequence[dict[str, Any]], batch: int, valued: bool
) -> tuple[float, float]:
    """Movements per second, and this process's CPU µs per movement (the whole of the
    work on SQLite; on PostgreSQL the server's share is not in it)."""
    store.valuing = valued
    store.add_agent(AGENT)
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(movements), batch):
        results = store.apply_batch(AGENT, movements[i : i + batch])
        assert all(r["status"] == "applied" for r in results), results[:3]
    rate = len(movements) / (time.perf_counter() - started)
    return rate, (time.process_time() - cpu) * 1e6 / len(movements)


def run(
    open_fresh: Callable[[str], SqlStore], movements: list[dict[str, Any]], batch: int, rounds: int
) -> dict[str, Any]:
    qty, val, qty_cpu, val_cpu = [], [], [], []
    for r in range(rounds):
        for valued in (False, True) if r % 2 == 0 else (True, False):
            with open_fresh(f"r{r}{'v' if valued else 'q'}") as store:
                rate, cpu = one_arm(store, movements, batch, valued)
                if valued:
                    ident = store.read(_identity_holds)
                    assert ident, "the inventory identity does not hold"
            (val if valued else qty).append(rate)
            (val_cpu if valued else qty_cpu).append(cpu)
            arm = "valued" if valued else "quantity only"
            print(f"bench.valuation: round {r + 1}/{rounds} {arm}: {rate:,.0f}/s", file=sys.stderr)
    q, v = statistics.median(qty), statistics.median(val)
    qc, vc = statistics.median(qty_cpu), statistics.median(val_cpu)
    return {
        "movements_per_s_quantity_only": round(q, 1),
        "movements_per_s_valued": round(v, 1),
        "ratio": round(v / q, 3),
        "rounds_quantity_only": [round(x, 1) for x in qty],
        "rounds_valued": [round(x, 1) for x in val],
        # CPU time moves less than wall time with a shared machine's load
        "cpu_us_per_movement_quantity_only": round(qc, 1),
        "cpu_us_per_movement_valued": round(vc, 1),
        "ratio_cpu": round(qc / vc, 3),
    }


def _identity_holds(db: Any) -> bool:
    from ledger.valuation.reports import identity

    return all(row["holds"] for row in identity(db, None))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.valuation", description=__doc__.split("\n")[0]
    )
    p.add_argument("--movements", type=int, default=20000)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--pg", action="store_true", help="also on a throwaway PostgreSQL cluster")
    p.add_argument("--dir", type=Path, default=None, help="where the temp dir goes")
    args = p.parse_args(argv)
    movements = workload(args.movements)
    backends: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-valuation-", dir=args.dir) as tmp:
        backends["sqlite"] = run(
            lambda name: LedgerStore(Path(tmp) / f"{name}.db"), movements, args.batch, args.rounds
        )
        if args.pg:
            from bench.pgcluster import PgCluster
            from ledger.store.postgres import PgStore

            cluster = PgCluster(fsync=True).start()
            try:
                backends["postgresql"] = run(
                    lambda name: PgStore(cluster.create_database(f"v_{name}")),
                    movements, args.batch, args.rounds,
                )  # fmt: skip
            finally:
                cluster.stop()
    out = {
        **backends["sqlite"],
        "backends": backends,
        "movements": args.movements,
        "batch": args.batch,
        "rounds": args.rounds,
        "method": "fifo",
        "cpu": cpu_model(),
    }
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
