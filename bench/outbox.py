"""The outbox against its bars (DESIGN §8), side by side in one run.

    python -m bench.outbox [--n 5000] [--pq-n 2000] [--rounds 7] [--single 1000] [--quick]

Prints one JSON object on stdout; progress goes to stderr. Every file lives in
one temp dir, so both sides write to the same filesystem. Rounds interleave the
sides (A/B, then B/A) and the headline numbers are medians across rounds.

1. Burst: N reads, each with one ``receive`` movement, stored the way the
   daemon's rules task stores a burst (one ``store`` call of up to
   ``group_max`` commits at a time), then fetched pending in batches of 500
   and settled delivered, as sync does. Rate = N / (store + settle seconds).
   ``edgetally_gathered_per_s`` submits every chunk at once instead (the
   writer then groups them), as a third burst arm.
   Against persist-queue's ``SQLiteAckQueue``: put N, then get + ack each.
   Bar: ``ratio`` >= 10.
2. One scan to disk: ``store_blocking([one Commit])`` latency against a bare
   sqlite3 ``BEGIN IMMEDIATE; INSERT; COMMIT`` of a similar row with the same
   PRAGMAs on a fresh file, samples interleaved one by one.
   Bar: ``single_commit_ratio`` (p99 / p99) <= 1.5.

Two diagnostic arms, interleaved with those two: ``sqlite_same_rows_*`` is
the outbox's own schema and rows (a read and its movement) written by bare
sqlite3 on the calling thread, and ``writer_roundtrip_*`` is an empty job on
the outbox's writer (the thread hop, BEGIN/COMMIT with nothing to
write, no fsync). ours - same_rows is the cost of our machinery (writer thread,
cap check, JSON); same_rows - floor is the cost of the schema.

persist-queue's get scans its table, so its rate falls as N grows: a smaller
``--pq-n`` than ``--n`` favours persist-queue, never us.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import importlib.metadata
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import persistqueue

from agent.clock import Clock, Uuid7, utc_iso
from agent.model import ClockStamp, Item, Movement, Read
from agent.outbox import Commit, Outbox
from agent.outbox.schema import migrate
from bench.common import cpu_model, gtin14, pct

AGENT = "bench-dock-1"
GROUP_MAX = 512  # outbox.group_max as measured (the daemon's default was 512 then, now 2048)
PENDING_BATCH = 500  # sync's default batch_max
PENDING_BYTES = 1 << 20  # sync's default batch_max_bytes
MAX_BYTES = 1 << 30
RATIO_BAR = 10.0
SINGLE_BAR = 1.5
PRAGMAS = (
    "PRAGMA busy_timeout = 10000",
    "PRAGMA foreign_keys = ON",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
)


def log(message: str) -> None:
    print(f"bench.outbox: {message}", file=sys.stderr, flush=True)


# ---- workload: realistic reads and movements, built before any timing --------------------


class Scans:
    """Reads from a dock scanner, each with the ``receive`` movement a receiving station makes."""

    def __init__(self) -> None:
        self.clock = Clock(synced=lambda: True)
        self.ids = Uuid7()

    def commit(self, i: int) -> Commit:
        gtin = gtin14(f"095060001{i % 10000:04d}")
        lot = f"L{i // 97:05d}"
        data = f"01{gtin}10{lot}\x1d21{i:08d}".encode()
        read = Read(
            id=self.ids.new(),
            device="usb-Honeywell_Imaging_Xenon_1950g_19123B4567-event-kbd",
            kind="barcode",
            data=data,
            observed_at=utc_iso(self.clock.wall()),
            mono_ns=self.clock.mono_ns(),
            boot_id=self.clock.boot_id,
            symbology="]C1",
        )
        movement = Movement(
            id=self.ids.new(),
            agent=AGENT,
            kind="receive",
            item=Item(gtin=gtin, lot=lot, serial=f"{i:08d}"),
            qty=1,
            to="DOCK-1",
            ref={"po": "PO-2026-004711"},
            station="receiving-1",
            device=read.device,
            operator="op-117",
            observed_at=utc_iso(self.clock.wall()),
            clock=ClockStamp(synced=True, boot_id=self.clock.boot_id, mono_ns=read.mono_ns),
            evidence={
                "read_ids": [read.id],
                "raw": data.decode("utf-8", "backslashreplace"),
                "symbology": "]C1",
            },
        )
        return Commit(read, [movement], {}, "good")

    def commits(self, n: int) -> list[Commit]:
        return [self.commit(i) for i in range(n)]


def chunks(items: Sequence[Commit], size: int) -> Iterator[Sequence[Commit]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def payloads(commits: Sequence[Commit]) -> list[dict[str, Any]]:
    """The movement JSON as persist-queue's payload: the same dict the ledger would receive."""
    return [c.movements[0].with_seq(i).to_dict() for i, c in enumerate(commits, start=1)]


# ---- 1. burst: ours ----------------------------------------------------------------------


def deliver_all(box: Outbox) -> int:
    """What sync does on success: fetch pending in batches, settle each batch delivered."""
    done = 0
    while batch := box.pending(0, PENDING_BATCH, PENDING_BYTES):
        done += box.settle_blocking([(p.seq, "delivered", None) for p in batch])
    return done


def check_stored(box: Outbox, n: int, stored_errors: int, delivered: int) -> None:
    stats = box.stats()
    if stored_errors or delivered != n or stats.delivered != n or stats.pending:
        raise RuntimeError(
            f"outbox burst went wrong: {stored_errors} refused, {delivered} settled, stats {stats}"
        )


def ours_burst(path: Path, commits: Sequence[Commit], gathered: bool = False) -> dict[str, float]:
    """Store a burst and mark it delivered; ``gathered`` submits every chunk at once."""
    box = Outbox.open(path, AGENT, MAX_BYTES, group_max=GROUP_MAX)
    try:
        gc.collect()
        t0 = time.perf_counter()
        if gathered:

            async def store_all() -> list[Any]:
                groups = await asyncio.gather(
                    *(box.store(chunk) for chunk in chunks(commits, GROUP_MAX))
                )
                return [s for group in groups for s in group]

            stored = asyncio.run(store_all())
        else:
            stored = [s for chunk in chunks(commits, GROUP_MAX) for s in box.store_blocking(chunk)]
        t1 = time.perf_counter()
        delivered = deliver_all(box)
        t2 = time.perf_counter()
        check_stored(box, len(commits), sum(s.error is not None for s in stored), delivered)
    finally:
        box.close()
    return {"store_s": t1 - t0, "deliver_s": t2 - t1, "total_s": t2 - t0}


# ---- 1. burst: persist-queue -------------------------------------------------------------


def pq_burst(path: Path, items: Sequence[dict[str, Any]]) -> dict[str, float]:
    """persist-queue's ack queue as its README shows it: put each, then get + ack each."""
    q = persistqueue.SQLiteAckQueue(str(path), auto_commit=True, multithreading=False)
    try:
        gc.collect()
        t0 = time.perf_counter()
        for item in items:
            q.put(item)
        t1 = time.perf_counter()
        for _ in range(len(items)):
            q.ack(q.get(block=False))
        t2 = time.perf_counter()
        if q.acked_count() != len(items) or q.qsize() or q.unack_count():
            raise RuntimeError(
                f"persist-queue burst went wrong: {q.acked_count()} acked of {len(items)}"
            )
    finally:
        q.close()
    return {"put_s": t1 - t0, "get_ack_s": t2 - t1, "total_s": t2 - t0}


# ---- 2. one scan to disk -----------------------------------------------------------------


def page_size_of(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        conn.close()


def bare_connection(path: Path, page_size: int) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute(f"PRAGMA page_size = {page_size}")  # before WAL: fixed once the file exists
    for pragma in PRAGMAS:
        conn.execute(pragma)
    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        raise RuntimeError(f"{path}: not in WAL mode")
    return conn


class Floor:
    """The bar's floor: one similar row (a movement's columns) per BEGIN IMMEDIATE/COMMIT.

    Its rows, JSON included, are made before timing: the floor is SQLite alone.
    """

    def __init__(self, path: Path, page_size: int) -> None:
        self.conn = bare_connection(path, page_size)
        self.conn.execute(
            "CREATE TABLE movements(seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
            " kind TEXT NOT NULL, payload TEXT NOT NULL, created_at REAL NOT NULL)"
        )

    @staticmethod
    def rows(commits: Sequence[Commit]) -> list[tuple[Any, ...]]:
        out = []
        for seq, commit in enumerate(commits, start=1):
            m = commit.movements[0].with_seq(seq)
            out.append((seq, m.id, m.kind, m.to_json()))
        return out

    def write(self, row: tuple[Any, ...]) -> None:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO movements(seq, id, kind, payload, created_at) VALUES (?, ?, ?, ?, ?)",
            (*row, time.time()),
        )
        conn.execute("COMMIT")


class SameRows:
    """Diagnostic: the outbox's schema and rows, bare sqlite3, on the calling thread."""

    def __init__(self, path: Path, page_size: int) -> None:
        self.conn = bare_connection(path, page_size)
        migrate(self.conn, str(path))

    @staticmethod
    def rows(commits: Sequence[Commit]) -> list[tuple[Any, ...]]:
        out = []
        for seq, commit in enumerate(commits, start=1):
            read, m = commit.read, commit.movements[0].with_seq(seq)
            assert read is not None
            out.append(
                (
                    (
                        read.id, read.device, read.kind, read.data, read.symbology,
                        read.antenna, read.rssi, read.seen_count, read.observed_at,
                        read.mono_ns, read.boot_id, commit.outcome, seq, seq,
                    ),
                    (seq, m.id, read.id, m.kind, m.to_json()),
                )
            )  # fmt: skip
        return out

    def write(self, row: tuple[Any, ...]) -> None:
        read_row, movement_row = row
        now = time.time()
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO reads(id, device, kind, data, symbology, antenna, rssi, seen_count,"
            " observed_at, mono_ns, boot_id, outcome, first_seq, last_seq, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*read_row, now),
        )
        conn.execute(
            "INSERT INTO movements(seq, id, read_id, kind, payload, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (*movement_row, now),
        )
        conn.execute("COMMIT")


def single_round(
    tmp: Path, r: int, scans: Scans, warmup: int, count: int
) -> dict[str, list[float]]:
    """Interleave the arms sample by sample, rotating who goes first."""
    with contextlib.ExitStack() as stack:
        box = Outbox.open(tmp / f"single-ours-{r}.db", AGENT, MAX_BYTES, group_max=GROUP_MAX)
        stack.callback(box.close)  # the writer thread must end, or the process never exits
        page_size = page_size_of(box.path)
        floor = Floor(tmp / f"single-floor-{r}.db", page_size)
        stack.callback(floor.conn.close)
        same = SameRows(tmp / f"single-same-{r}.db", page_size)
        stack.callback(same.conn.close)
        return interleave(box, floor, same, scans, warmup, count)


def interleave(
    box: Outbox, floor: Floor, same: SameRows, scans: Scans, warmup: int, count: int
) -> dict[str, list[float]]:
    total = warmup + count
    arms: dict[str, tuple[Callable[[Any], object], Sequence[Any]]] = {
        "ours": (lambda c: box.store_blocking([c]), scans.commits(total)),
        "floor": (floor.write, Floor.rows(scans.commits(total))),
        "same_rows": (same.write, SameRows.rows(scans.commits(total))),
        "roundtrip": (lambda _: box.submit_blocking(lambda tx: None), range(total)),
    }
    names = list(arms)
    samples: dict[str, list[float]] = {name: [] for name in names}
    gc.collect()
    for i in range(total):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            write, inputs = arms[name]
            t0 = time.perf_counter_ns()
            write(inputs[i])
            dt = time.perf_counter_ns() - t0
            if i >= warmup:
                samples[name].append(dt / 1e6)
    return samples


# ---- numbers and machine -----------------------------------------------------------------


def med(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def filesystem_of(path: Path) -> dict[str, str] | None:
    """The mount holding ``path``: device, mount point, type and options (Linux)."""
    real = os.path.realpath(path)
    best: dict[str, str] | None = None
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        device, mount, fstype, options, *_ = line.split(" ")
        mount = mount.replace("\\040", " ")
        inside = real == mount or real.startswith(mount.rstrip("/") + "/")
        if inside and (best is None or len(mount) >= len(best["mount"])):
            best = {"device": device, "mount": mount, "type": fstype, "options": options}
    return best


def machine(tmp: Path) -> dict[str, Any]:
    probe = sqlite3.connect(str(tmp / "probe.db"))
    default_sync = probe.execute("PRAGMA synchronous").fetchone()[0]
    probe.close()
    return {
        "python": platform.python_version(),
        "sqlite_version": sqlite3.sqlite_version,
        "sqlite_default_synchronous": default_sync,  # what persist-queue runs with
        "persistqueue_version": importlib.metadata.version("persist-queue"),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "tmp_dir": str(tmp),
        "filesystem": filesystem_of(tmp),
    }


# ---- run ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.outbox", description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=5000, help="reads per burst, ours (default 5000)")
    p.add_argument("--pq-n", type=int, default=2000, help="items per burst, persist-queue")
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    p.add_argument("--single", type=int, default=1000, help="single commits per round and arm")
    p.add_argument(
        "--warmup", type=int, default=100, help="single commits per round and arm, not counted"
    )
    p.add_argument("--dir", type=Path, default=None, help="where to make the temp dir")
    p.add_argument("--quick", action="store_true", help="a fast smoke run (small everything)")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.pq_n, args.rounds, args.single, args.warmup = 600, 100, 2, 40, 5
    for name in ("n", "pq_n", "rounds", "single"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    started = time.perf_counter()
    scans = Scans()
    rounds: dict[str, list[float]] = {
        k: []
        for k in (
            "ours_per_s", "ours_store_per_s", "ours_deliver_per_s", "ours_gathered_per_s",
            "pq_per_s", "pq_put_per_s", "pq_get_ack_per_s", "ratio",
            "ours_p50_ms", "ours_p99_ms", "floor_p50_ms", "floor_p99_ms",
            "same_rows_p50_ms", "same_rows_p99_ms", "roundtrip_p50_ms", "roundtrip_p99_ms",
        )
    }  # fmt: skip
    pooled: dict[str, list[float]] = {"ours": [], "floor": [], "same_rows": [], "roundtrip": []}
    for r in range(args.rounds):
        commits = scans.commits(args.n)
        gathered_commits = scans.commits(args.n)
        items = payloads(scans.commits(args.pq_n))
        sides: list[tuple[str, Callable[[], dict[str, float]]]] = [
            ("ours", functools.partial(ours_burst, tmp / f"burst-ours-{r}.db", commits)),
            ("pq", functools.partial(pq_burst, tmp / f"burst-pq-{r}", items)),
            (
                "gathered",
                functools.partial(
                    ours_burst, tmp / f"burst-gathered-{r}.db", gathered_commits, gathered=True
                ),
            ),
        ]
        if r % 2:
            sides.reverse()
        got = {name: fn() for name, fn in sides}
        ours, pq, gathered = got["ours"], got["pq"], got["gathered"]
        rounds["ours_per_s"].append(args.n / ours["total_s"])
        rounds["ours_store_per_s"].append(args.n / ours["store_s"])
        rounds["ours_deliver_per_s"].append(args.n / ours["deliver_s"])
        rounds["ours_gathered_per_s"].append(args.n / gathered["total_s"])
        rounds["pq_per_s"].append(args.pq_n / pq["total_s"])
        rounds["pq_put_per_s"].append(args.pq_n / pq["put_s"])
        rounds["pq_get_ack_per_s"].append(args.pq_n / pq["get_ack_s"])
        rounds["ratio"].append(rounds["ours_per_s"][-1] / rounds["pq_per_s"][-1])

        samples = single_round(tmp, r, scans, args.warmup, args.single)
        for name, values in samples.items():
            pooled[name].extend(values)
            rounds[f"{name}_p50_ms"].append(pct(values, 50))
            rounds[f"{name}_p99_ms"].append(pct(values, 99))
        log(
            f"round {r + 1}/{args.rounds}: ours {rounds['ours_per_s'][-1]:,.0f}/s, "
            f"persist-queue {rounds['pq_per_s'][-1]:,.0f}/s, "
            f"one commit p99 {rounds['ours_p99_ms'][-1]:.3f} ms "
            f"vs floor {rounds['floor_p99_ms'][-1]:.3f} ms"
        )

    m = {k: med(v) for k, v in rounds.items()}  # ratios below are of these medians
    ratio = m["ours_per_s"] / m["pq_per_s"]
    single_ratio = m["ours_p99_ms"] / m["floor_p99_ms"]
    return {
        "bench": "outbox",
        "edgetally_enqueue_per_s": round(m["ours_per_s"], 1),
        "persistqueue_put_ack_per_s": round(m["pq_per_s"], 1),
        "ratio": round(ratio, 2),
        "ratio_bar": RATIO_BAR,
        "ratio_met": ratio >= RATIO_BAR,
        "single_commit_p50_ms": round(m["ours_p50_ms"], 4),
        "single_commit_p99_ms": round(m["ours_p99_ms"], 4),
        "sqlite_floor_p50_ms": round(m["floor_p50_ms"], 4),
        "sqlite_floor_p99_ms": round(m["floor_p99_ms"], 4),
        "single_commit_ratio": round(single_ratio, 3),
        "single_commit_bar": SINGLE_BAR,
        "single_commit_met": single_ratio <= SINGLE_BAR,
        "sqlite_same_rows_p50_ms": round(m["same_rows_p50_ms"], 4),
        "sqlite_same_rows_p99_ms": round(m["same_rows_p99_ms"], 4),
        "writer_roundtrip_p50_ms": round(m["roundtrip_p50_ms"], 4),
        "writer_roundtrip_p99_ms": round(m["roundtrip_p99_ms"], 4),
        "pooled_p99_ms": {k: round(pct(v, 99), 4) for k, v in pooled.items()},
        "edgetally_store_only_per_s": round(m["ours_store_per_s"], 1),
        "edgetally_deliver_mark_per_s": round(m["ours_deliver_per_s"], 1),
        "edgetally_gathered_per_s": round(m["ours_gathered_per_s"], 1),
        "persistqueue_put_per_s": round(m["pq_put_per_s"], 1),
        "persistqueue_get_ack_per_s": round(m["pq_get_ack_per_s"], 1),
        "n": args.n,
        "pq_n": args.pq_n,
        "rounds": args.rounds,
        "single": args.single,
        "warmup": args.warmup,
        "group_max": GROUP_MAX,
        "pending_batch": PENDING_BATCH,
        "per_round": {k: [round(x, 4) for x in v] for k, v in rounds.items()},
        "machine": machine(tmp),
        "elapsed_s": round(time.perf_counter() - started, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="edgetally-bench-", dir=args.dir) as tmp:
        log(f"n={args.n} pq_n={args.pq_n} rounds={args.rounds} single={args.single} in {tmp}")
        try:
            result = run(args, Path(tmp))
        except RuntimeError as exc:
            log(f"failed: {exc}")
            return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
