"""Long outage: a backlog buffered while the ledger is down, drained when it returns.

    python -m bench.outage [--movements 1000000] [--batch 500] [--sinks 1|2|3] [--dir DIR]

1. Buffer: ``--movements`` pending movements in the outbox, stored as the agent
   stores them (bench.footprint's prefill: a read and its receive per commit).
2. Ceiling: the same batches (the outbox's payloads, ``--batch`` at a time,
   the body the agent's sink sends) posted straight to a fresh ledger process
   on loopback, one request at a time as the agent does; only the POSTs are
   timed. That is the ledger's own ingest rate for this backlog.
3. Outage: ``edgetally run`` starts with the ledger down and fails to sync
   (its backoff is capped at ``--backoff-cap-s``); then a second fresh ledger
   starts on its address. ``drain_s`` runs from that ledger answering
   /healthz to the outbox holding nothing pending.

Prints one JSON object: ``buffered``, ``outbox_mb``, ``drain_s``, ``drain_per_s``,
``ledger_ceiling_per_s``, ``ratio`` (drain / ceiling), ``lost`` (buffered ids
not in the journal), ``duplicated`` (ids or reads in the journal twice).
Bar (DESIGN §8): ratio >= 0.5, 0 lost, 0 duplicated.

``--sinks 2`` or ``3``: the same backlog drained to several sinks at once (the
ledger, an MQTT broker, a second ledger) beside the single-sink drain of it, in
one run; see bench.outage_sinks for what it prints.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import httpx

from agent.cli import write_secret
from bench.backlog import AGENT, MAX_BYTES, file_bytes, prefill
from bench.common import delivery_report, integrity, ledger_journal
from bench.procs import (
    BenchError,
    Child,
    bench_main,
    child_env,
    free_port,
    stop_quietly,
    wait_healthy,
)
from ledger import LedgerStore

EDGETALLY = [sys.executable, "-m", "agent.cli"]
STATIONS = [("dock-1", "DOCK-1", ["scanner-1"])]
RATIO_BAR = 0.5


def log(message: str) -> None:
    print(f"bench.outage: {message}", file=sys.stderr, flush=True)


def new_ledger(tmp: Path, name: str) -> tuple[Path, Path, str]:
    """A fresh ledger database that knows the agent; (db, token file, token)."""
    db = tmp / f"{name}.db"
    with LedgerStore(db) as store:
        token = store.add_agent(AGENT)
    token_file = tmp / f"{name}.token"
    write_secret(token_file, token)
    return db, token_file, token


def start_ledger(tmp: Path, name: str, db: Path, port: int) -> Child:
    argv = [*EDGETALLY, "ledger", "serve", "--db", str(db), "--port", str(port)]
    return Child(name, argv, tmp, child_env())


def batches(outbox: Path, size: int) -> Iterator[bytes]:
    """The outbox's pending payloads as request bodies, the way the agent's sink joins them."""
    conn = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True)
    try:
        after = 0
        while True:
            rows = conn.execute(
                "SELECT seq, payload FROM movements WHERE state = 'pending' AND seq > ?"
                " ORDER BY seq LIMIT ?",
                (after, size),
            ).fetchall()
            if not rows:
                return
            after = rows[-1][0]
            yield (
                '{"agent":'
                + json.dumps(AGENT)
                + ',"movements":['
                + ",".join(p for _, p in rows)
                + "]}"
            ).encode()
    finally:
        conn.close()


def ceiling(tmp: Path, outbox: Path, size: int) -> dict[str, Any]:
    """Phase 2: the ledger's own ingest rate for these batches, POSTs timed alone."""
    db, _, token = new_ledger(tmp, "ceiling")
    port = free_port()
    ledger = start_ledger(tmp, "ceiling-ledger", db, port)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(ledger, url)
        posted, seconds = 0, 0.0
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            for body in batches(outbox, size):
                t0 = time.perf_counter()
                r = client.post("/v1/movements", content=body)
                seconds += time.perf_counter() - t0
                if r.status_code != 200:
                    raise BenchError(
                        f"ceiling: the ledger answered {r.status_code}: {r.text[:200]}"
                    )
                results = r.json()["results"]
                if any(x["status"] != "applied" for x in results):
                    raise BenchError(f"ceiling: not all applied: {results[:3]}")
                posted += len(results)
        ledger.stop()
    finally:
        stop_quietly(ledger)
    log(f"ceiling: {posted:,} movements in {seconds:.1f} s of POSTs")
    return {"movements": posted, "seconds": seconds, "per_s": posted / seconds}


def write_config(tmp: Path, url: str, token_file: Path, args: argparse.Namespace) -> Path:
    path = tmp / "agent.toml"
    path.write_text(
        f'[agent]\nid = "{AGENT}"\nstate_dir = {json.dumps(str(tmp))}\nlog_level = "info"\n\n'
        f'[outbox]\npath = "outbox.db"\nmax_bytes = {MAX_BYTES}\n\n'
        f"[sync]\nurl = {json.dumps(url)}\ntoken_file = {json.dumps(str(token_file))}\n"
        f"batch_max = {args.batch}\ntimeout_s = 30\nbackoff_initial_s = 0.1\n"
        f"backoff_cap_s = {args.backoff_cap_s}\n\n"
        '[health]\nlisten = ""\n',
        encoding="utf-8",
    )
    return path


def pending(outbox: Path) -> int:
    conn = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True)
    try:
        return int(
            conn.execute("SELECT count(*) FROM movements WHERE state = 'pending'").fetchone()[0]
        )
    finally:
        conn.close()


def movement_ids(outbox: Path) -> set[str]:
    conn = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True)
    try:
        return {mid for (mid,) in conn.execute("SELECT id FROM movements")}
    finally:
        conn.close()


def outage(tmp: Path, outbox: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Phase 3: the agent runs with the ledger down; the ledger returns; time the drain."""
    db, token_file, _ = new_ledger(tmp, "ledger")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = write_config(tmp, url, token_file, args)
    agent = Child("agent", [*EDGETALLY, "run", "--config", str(config)], tmp, child_env())
    ledger: Child | None = None
    try:
        deadline = time.monotonic() + 120
        while agent.events["sync_failed"] < 2:  # it tried, and backed off, with the ledger down
            if not agent.alive():
                raise agent.died("waiting for the ledger")
            if time.monotonic() > deadline:
                raise BenchError("the agent did not try the ledger within 120 s")
            time.sleep(0.02)
        log(f"agent is failing to sync ({agent.events['sync_failed']} tries); the ledger returns")
        ledger = start_ledger(tmp, "ledger", db, port)
        wait_healthy(ledger, url, timeout=60)
        t0 = time.perf_counter()
        first: float | None = None
        deadline = time.monotonic() + args.drain_timeout_s
        left = args.movements
        while left:
            time.sleep(0.1)
            left = pending(outbox)
            if first is None and left < args.movements:
                first = time.perf_counter() - t0
            if not agent.alive():
                raise agent.died("draining")
            if time.monotonic() > deadline:
                raise BenchError(f"{left:,} still pending after {args.drain_timeout_s:.0f} s")
        drain_s = time.perf_counter() - t0
        agent.stop()
        ledger.stop()
    finally:
        stop_quietly(agent)
        if ledger is not None:
            stop_quietly(ledger)
    return {"drain_s": drain_s, "first_delivery_s": first, "db": db}


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    started = time.perf_counter()
    outbox = tmp / "outbox.db"
    filled = prefill(outbox, STATIONS, args.movements)
    outbox_mb = file_bytes(outbox) / 2**20
    top = None if args.skip_ceiling else ceiling(tmp, outbox, args.batch)
    drained = outage(tmp, outbox, args)
    journal = ledger_journal(drained["db"], AGENT)
    report = delivery_report(journal, [])
    lost = len(movement_ids(outbox) - {e["id"] for e in journal})
    drain_per_s = args.movements / drained["drain_s"]
    ratio = None if top is None else drain_per_s / top["per_s"]
    return {
        "bench": "outage",
        "buffered": args.movements,
        "outbox_mb": round(outbox_mb, 1),
        "drain_s": round(drained["drain_s"], 2),
        "drain_per_s": round(drain_per_s, 1),
        "ledger_ceiling_per_s": None if top is None else round(top["per_s"], 1),
        "ratio": None if ratio is None else round(ratio, 3),
        "ratio_bar": RATIO_BAR,
        "ratio_met": None if ratio is None else ratio >= RATIO_BAR,
        "lost": lost,
        "duplicated": report["duplicated"],
        "delivered": report["delivered"],
        "seq_gaps": report["seq_gaps"],
        "first_delivery_s": None
        if drained["first_delivery_s"] is None
        else round(drained["first_delivery_s"], 2),
        "db_integrity": integrity(outbox),
        "batch": args.batch,
        "backoff_cap_s": args.backoff_cap_s,
        "prefill_per_s": filled["per_s"],
        "elapsed_s": round(time.perf_counter() - started, 1),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.outage", description=(__doc__ or "").split("\n")[0]
    )
    p.add_argument("--movements", type=int, default=1_000_000, help="backlog (default 1,000,000)")
    p.add_argument("--batch", type=int, default=500, help="movements per request (default 500)")
    p.add_argument(
        "--backoff-cap-s",
        type=float,
        default=1.0,
        help="the agent's longest retry wait (default 1)",
    )
    p.add_argument("--drain-timeout-s", type=float, default=3600.0, help="give up after this")
    p.add_argument(
        "--skip-ceiling",
        action="store_true",
        help="no ceiling phase (exactly-once checks only): ratio and ceiling are null",
    )
    p.add_argument(
        "--sinks",
        type=int,
        choices=(1, 2, 3),
        default=1,
        help="drain to this many sinks at once (ledger, mqtt, a second ledger) beside one",
    )
    p.add_argument("--dir", type=Path, default=None, help="where to make the temp dir")
    args = p.parse_args(argv)
    for name in ("movements", "batch"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    for name in ("backoff_cap_s", "drain_timeout_s"):
        if not getattr(args, name) > 0:
            p.error(f"--{name.replace('_', '-')} must be more than 0")
    return args


def main(argv: Sequence[str] | None = None, stdout: IO[str] | None = None) -> int:
    args = parse_args(argv)
    if args.sinks > 1:
        from bench import outage_sinks

        def job(tmp: Path) -> dict[str, Any]:
            return outage_sinks.run(args, tmp)
    else:

        def job(tmp: Path) -> dict[str, Any]:
            return run(args, tmp)

    return bench_main(
        "outage",
        f"movements={args.movements:,} batch={args.batch} sinks={args.sinks}",
        job,
        say=log,
        parent=args.dir,
        stdout=stdout,
    )


if __name__ == "__main__":
    sys.exit(main())
