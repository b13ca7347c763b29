"""The daemon's footprint against its bars (DESIGN §8): memory, start-up, scan to ledger.

    python -m bench.footprint [--pending 1000000] [--load-s 60] [--scans 400] [--tags 275]
                              [--no-reader] [--quick]

Prints one JSON object on stdout; progress goes to stderr. The agent always
runs as a real process (``python -m agent.cli run --config ...``), and every
file lives in one temp dir that is removed at the end.

1. Backlog: the agent's outbox is filled with ``--pending`` receive movements
   (each with its read, as a dock scanner makes them) through
   ``Outbox.store_blocking`` in big batches, before the agent starts.
2. Start-up: the agent starts on that outbox with the ledger down (its URL is
   a closed loopback port), ``--scanners`` simulated scanners, each a
   repeating script of GS1 scans, together ``--reads-per-s``, and one LLRP
   reader: the emulator (``edgetally sim llrp``, its own process) with
   ``--tags`` stationary tags on two shelves, each read ``--tag-rate-hz``
   times a second, on a ``zone`` station (bench/reader.py). ``startup_s``
   runs from spawn to READY: ``READY=1`` on the ``$NOTIFY_SOCKET`` datagram
   socket we bind and pass in, or, for a daemon that does not send it, the
   ``"event": "ready"`` log line on its stdout (``startup_method`` says which).
3. Memory: the child's VmRSS (/proc/<pid>/status) once a second for
   ``--load-s`` while the scanners scan, the reader reads and the backlog
   stays undelivered; the window opens once the reader's first tag is stored
   (it connects after READY). ``rss_mb`` is the last sample; ``pending`` is
   the outbox's count at the end; ``reader.reads_per_s`` is the tag reads the
   agent stored per second; ``load.extension_modules`` the C modules it mapped.
4. Scan to ledger: a fresh outbox, a real ledger process on loopback, one
   scanner scanning every ``--scan-interval-ms``, ``--scans`` scans. Latency =
   the ledger journal's ``received_at`` minus the movement's ``observed_at``
   (both wall clock on this machine). ``read_to_ledger_*`` starts at the
   read's own stamp instead (driver time, before the rules queue).

The page cache is warm at start-up (phase 1 has just written the file):
``startup_s`` is a warm start, not a cold boot.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import sqlite3
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from agent.outbox import connect
from agent.status import outbox_status
from bench.backlog import (
    AGENT,
    MAX_BYTES,
    file_bytes,
    gs1_scan,
    prefill,
    write_config,
    write_script,
)
from bench.common import cpu_model, pct
from bench.procs import (
    EDGETALLY,
    BenchError,
    Child,
    bench_main,
    child_env,
    free_port,
    log,
    mapped_libraries,
    mb,
    read_proc_status,
    start_agent,
    stop_quietly,
    wait_healthy,
    wait_ready,
)
from bench.reader import DEVICE, Shelf, reader_toml, reads_by_device, start_emulator, wait_first_tag
from ledger import LedgerStore

RSS_BAR_MB = 60.0
P99_BAR_MS = 50.0
SIZES = {"pending": (1_000_000, 20_000), "load_s": (60, 5), "scans": (400, 50)}  # full, --quick


# ---- phases 2 and 3: start-up and memory with the backlog --------------------------------


def highest_seq(path: Path) -> int:
    conn = connect(path, readonly=True)
    try:
        return int(conn.execute("SELECT coalesce(max(seq), 0) FROM movements").fetchone()[0])
    finally:
        conn.close()


def footprint(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    work = tmp / "backlog"
    work.mkdir()
    names = [f"scanner-{k + 1}" for k in range(args.scanners)]
    half = (len(names) + 1) // 2
    stations = [("dock-1", "DOCK-1", names[:half]), ("dock-2", "DOCK-2", names[half:])]
    stations = [s for s in stations if s[2]]
    log(f"phase 1: {args.pending:,} pending movements into the outbox")
    filled = prefill(work / "outbox.db", stations, args.pending)

    delay = round(args.scanners / args.reads_per_s, 6)
    devices = []
    for k, name in enumerate(names):
        lines = [(gs1_scan(k * 100_000 + i), delay) for i in range(200)]
        devices.append((name, write_script(work / f"{name}.jsonl", lines), True))
    token = work / "token"
    token.write_text(secrets.token_urlsafe(32) + "\n", encoding="utf-8")
    token.chmod(0o600)  # the agent refuses a token others can read
    down = f"http://127.0.0.1:{free_port()}"  # nobody listens: the ledger is down
    shelf = Shelf(args.tags, args.tag_rate_hz)

    with contextlib.ExitStack() as stack:
        extra = ""
        if args.reader:
            log(f"reader: {shelf.tags} tags on two shelves, {shelf.offered_per_s:,.0f} reads/s")
            extra = reader_toml(start_emulator(stack, work, shelf))
        config = write_config(work, down, token, devices, stations, extra)
        readers = 1 if args.reader else 0
        log(f"phase 2: start-up with {args.scanners} scanners, {readers} reader, ledger down")
        agent, notify = start_agent(stack, "agent-backlog", config, work, args.agent_env)
        startup_s, method, logged_s = wait_ready(agent, notify, args.startup_timeout)
        log(f"ready after {startup_s:.2f}s ({method})")
        at_ready = read_proc_status(agent.pid)
        first_tag_s = None
        if args.reader:  # the reader connects and configures after READY: load starts with it
            first_tag_s = wait_first_tag(work / "outbox.db", time.time(), agent, 60)
            log(f"first tag read {first_tag_s:.2f}s after ready")

        log(f"phase 3: RSS once a second for {args.load_s}s of scanning")
        wall0 = time.time()
        seq0 = highest_seq(work / "outbox.db")
        t0 = time.monotonic()
        samples: list[float] = []
        for k in range(1, args.load_s + 1):
            time.sleep(max(0.0, t0 + k - time.monotonic()))
            if not agent.alive():
                raise agent.died("under load")
            samples.append(mb(read_proc_status(agent.pid)["VmRSS"]))
            if k % 10 == 0 or k == args.load_s:
                log(f"  {k}s: RSS {samples[-1]:.1f} MB")
        last = read_proc_status(agent.pid)
        libraries = mapped_libraries(agent.pid)
        by_device = reads_by_device(work / "outbox.db", wall0)
        seq1 = highest_seq(work / "outbox.db")
        elapsed = time.monotonic() - t0
        status = outbox_status(work / "outbox.db", MAX_BYTES)
        stop_s = agent.stop()
    pending = status["outbox"]["pending"]
    if pending < args.pending:
        raise BenchError(
            f"the outbox holds {pending} pending, fewer than the {args.pending} put in"
        )
    scans = sum(by_device.get(name, 0) for name in names)
    tags = by_device.get(DEVICE, 0)
    return {
        "rss_mb": samples[-1],
        "rss_max_mb": max(samples),
        "vm_hwm_mb": mb(last["VmHWM"]),
        "rss_anon_mb": mb(last["RssAnon"]),
        "rss_file_mb": mb(last["RssFile"]),
        "pending": pending,
        "startup_s": round(startup_s, 3),
        "startup_method": method,
        "startup_log_line_s": None if logged_s is None else round(logged_s, 3),
        "prefill": filled,
        "reader": {
            "enabled": args.reader,
            "tags": shelf.tags if args.reader else 0,
            "tag_rate_hz": shelf.rate_hz,
            "offered_reads_per_s": shelf.offered_per_s if args.reader else 0,
            "reads": tags,
            "reads_per_s": round(tags / elapsed, 1),
            "first_tag_after_ready_s": None if first_tag_s is None else round(first_tag_s, 3),
        },
        "load": {
            "seconds": round(elapsed, 2),
            "scanners": args.scanners,
            "readers": readers,
            "stations": len(stations) + readers,
            "reads": scans,
            "reads_per_s": round(scans / elapsed, 2),
            "movements_per_s": round((seq1 - seq0) / elapsed, 2),
            "rss_at_ready_mb": mb(at_ready["VmRSS"]),
            "rss_samples_mb": samples,
            "rss_shmem_mb": mb(last["RssShmem"]),
            "threads": last["Threads"],
            "agent_events": dict(agent.events),
            "notify_messages": dict(notify.messages),
            "notify_socket": "path" if notify.path is not None else "abstract",
            "outbox_file_bytes": file_bytes(work / "outbox.db"),
            "extension_modules": libraries,
            "stop_s": round(stop_s, 3),
        },
    }


# ---- phase 4: scan to ledger -------------------------------------------------------------


def journal_count(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM journal").fetchone()[0])
    finally:
        conn.close()


def journal_times(db: Path) -> list[tuple[str, str, str]]:
    """(movement id, observed_at, received_at) of each agent movement, in journal order.

    ``received_at`` is a column of the journal, not part of the stored
    movement, so ``LedgerStore.journal()`` does not return it: read it here.
    """
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT id, payload, received_at FROM journal WHERE agent = ? AND source = 'agent'"
            " ORDER BY pos",
            (AGENT,),
        ).fetchall()
    finally:
        conn.close()
    return [(mid, json.loads(payload)["observed_at"], received) for mid, payload, received in rows]


def read_stamps(outbox: Path) -> dict[str, str]:
    """movement id -> its read's observed_at, from the agent's outbox."""
    conn = connect(outbox, readonly=True)
    try:
        rows = conn.execute(
            "SELECT m.id, r.observed_at FROM movements m JOIN reads r ON r.id = m.read_id"
        ).fetchall()
    finally:
        conn.close()
    return dict(rows)


def parse_ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def latency(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    work = tmp / "latency"
    work.mkdir()
    db = work / "ledger.db"
    with LedgerStore(db) as store:
        token = store.add_agent(AGENT)
    token_file = work / "token"
    token_file.write_text(token + "\n", encoding="utf-8")
    token_file.chmod(0o600)  # the agent refuses a token others can read
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    interval = args.scan_interval_ms / 1000
    script = write_script(
        work / "scanner-1.jsonl", [(gs1_scan(i), interval) for i in range(args.scans)]
    )
    config = write_config(
        work, url, token_file, [("scanner-1", script, False)], [("dock-1", "DOCK-1", ["scanner-1"])]
    )

    log(f"phase 4: {args.scans} scans every {args.scan_interval_ms} ms to a ledger at {url}")
    with contextlib.ExitStack() as stack:
        ledger = Child(
            "ledger",
            [*EDGETALLY, "ledger", "serve", "--db", str(db), "--port", str(port)],
            work,
            child_env(),
        )
        stack.callback(stop_quietly, ledger)
        wait_healthy(ledger, url)
        agent, notify = start_agent(stack, "agent-latency", config, work, args.agent_env)
        startup_s, _, _ = wait_ready(agent, notify, args.startup_timeout)
        deadline = time.monotonic() + args.scans * interval * 3 + 60
        while (got := journal_count(db)) < args.scans:
            if not agent.alive():
                raise agent.died("scanning")
            if not ledger.alive():
                raise ledger.died("taking movements")
            if time.monotonic() > deadline:
                raise BenchError(f"the ledger has {got} of {args.scans} movements; timed out")
            time.sleep(0.2)
        agent.stop()
        ledger.stop()
    rows = journal_times(db)
    if len(rows) != args.scans or len({mid for mid, _, _ in rows}) != args.scans:
        raise BenchError(f"the ledger journal holds {len(rows)} movements, expected {args.scans}")
    reads = read_stamps(work / "outbox.db")
    scan_ms = [(parse_ts(rec) - parse_ts(obs)) * 1000 for _, obs, rec in rows]
    read_ms = [(parse_ts(rec) - parse_ts(reads[mid])) * 1000 for mid, _, rec in rows]
    log(f"scan to ledger p50 {pct(scan_ms, 50):.2f} ms, p99 {pct(scan_ms, 99):.2f} ms")
    return {
        "scan_to_ledger_p50_ms": round(pct(scan_ms, 50), 3),
        "scan_to_ledger_p99_ms": round(pct(scan_ms, 99), 3),
        "scan_to_ledger_max_ms": round(max(scan_ms), 3),
        "read_to_ledger_p50_ms": round(pct(read_ms, 50), 3),
        "read_to_ledger_p99_ms": round(pct(read_ms, 99), 3),
        "latency": {
            "scans": args.scans,
            "scan_interval_ms": args.scan_interval_ms,
            "delivered": len(rows),
            "startup_fresh_outbox_s": round(startup_s, 3),
            "scan_to_ledger_first_ms": round(scan_ms[0], 3),  # a new connection, lazy imports
            "scan_to_ledger_min_ms": round(min(scan_ms), 3),
            "scan_to_ledger_p90_ms": round(pct(scan_ms, 90), 3),
        },
    }


# ---- numbers and machine -----------------------------------------------------------------


def machine(tmp: Path) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "sqlite_version": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "tmp_dir": str(tmp),
    }


# ---- run ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.footprint", description=(__doc__ or "").split("\n")[0]
    )
    p.add_argument("--pending", type=int, help="backlog (default 1,000,000; --quick 20,000)")
    p.add_argument("--load-s", type=int, help="seconds of RSS sampling (default 60; --quick 5)")
    p.add_argument("--scanners", type=int, default=4, help="simulated scanners (default 4)")
    p.add_argument(
        "--reads-per-s", type=float, default=20.0, help="all scanners together (default 20)"
    )
    p.add_argument(
        "--reader",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the LLRP reader emulator as the agent's one reader (default on)",
    )
    p.add_argument("--tags", type=int, default=275, help="tags on the reader's shelves")
    p.add_argument(
        "--tag-rate-hz", type=float, default=4.0, help="reads of each tag a second (default 4)"
    )
    p.add_argument("--scans", type=int, help="scans to the ledger (default 400; --quick 50)")
    p.add_argument(
        "--scan-interval-ms", type=float, default=50.0, help="between scans (default 50)"
    )
    p.add_argument("--startup-timeout", type=float, default=600.0, help="seconds to wait for READY")
    p.add_argument(
        "--agent-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the agent (repeatable), e.g. MALLOC_ARENA_MAX=2",
    )
    p.add_argument("--dir", type=Path, default=None, help="where to make the temp dir")
    p.add_argument("--quick", action="store_true", help="a fast smoke run; options given still win")
    args = p.parse_args(argv)
    pairs = [item.partition("=") for item in args.agent_env]
    if any(not name or not sep for name, sep, _ in pairs):
        p.error("--agent-env takes NAME=VALUE")
    args.agent_env = {name: value for name, _, value in pairs}
    for name, (full, quick) in SIZES.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    for name in ("pending", "load_s", "scanners", "scans", "tags"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("reads_per_s", "tag_rate_hz", "scan_interval_ms", "startup_timeout"):
        if not getattr(args, name) > 0:
            p.error(f"--{name.replace('_', '-')} must be more than 0")
    return args


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    started = time.perf_counter()
    memory = footprint(args, tmp)
    delivery = latency(args, tmp)
    out: dict[str, Any] = {"bench": "footprint"}
    for key in ("rss_mb", "pending", "startup_s"):
        out[key] = memory.pop(key)
    for key in ("scan_to_ledger_p50_ms", "scan_to_ledger_p99_ms"):
        out[key] = delivery.pop(key)
    out.update(
        {
            "rss_bar_mb": RSS_BAR_MB,
            "rss_met": out["rss_mb"] <= RSS_BAR_MB,
            "p99_bar_ms": P99_BAR_MS,
            "p99_met": out["scan_to_ledger_p99_ms"] <= P99_BAR_MS,
            **memory,
            **delivery,
            "agent_env": args.agent_env,
            "machine": machine(tmp),
            "elapsed_s": round(time.perf_counter() - started, 1),
        }
    )
    return out


def main(argv: Sequence[str] | None = None, stdout: IO[str] | None = None) -> int:
    args = parse_args(argv)
    return bench_main(
        "footprint",
        f"pending={args.pending:,} load_s={args.load_s} scanners={args.scanners} "
        f"scans={args.scans}",
        lambda tmp: run(args, tmp),
        parent=args.dir,
        stdout=stdout,
    )


if __name__ == "__main__":
    sys.exit(main())
