"""The ledger under many agents: SQLite (1 process) against PostgreSQL (1 and 2 processes).

    python -m bench.ledger [--movements 6400] [--batch 20] [--agents 1,4,16,64] [--dir DIR]

For each backend and each number of concurrent agents, a fresh database and
fresh ledger processes (``edgetally ledger serve``; two processes on two ports
for ``pg_2proc``, each agent alternating between them); ``--movements`` in all,
shared equally by the agents, each agent one httpx client posting batches of
``--batch`` one after another (bench.ledger_load). PostgreSQL is a throwaway
cluster started here with fsync on, as durable as SQLite's synchronous=FULL.

Per run: ``movements_per_s`` (all movements / wall time of the load),
``p99_batch_ms`` (first send to a 200), ``errors_5xx``, ``lost`` (sent ids not
in the journal), ``duplicated`` (journal entries beyond one per id), and
``on_hand_ok`` (on-hand equals the sum of the journal).
Summary keys: ``sqlite_1agent_per_s``, ``pg_16agents_per_s`` (the best of 1
and 2 processes), ``pg_16_vs_sqlite_1`` (their ratio; bar >= 1.0),
``pg_64agents_lost``, ``pg_64agents_duplicated``, ``pg_64agents_5xx`` (over
both PostgreSQL runs at 64; bar 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from bench.common import cpu_model, pct
from bench.ledger_load import audit, make_agents, run_agents
from bench.pgcluster import ClusterError, PgCluster
from bench.procs import (
    EDGETALLY,
    BenchError,
    Child,
    bench_main,
    child_env,
    free_port,
    stop_quietly,
    wait_healthy,
)
from ledger.store import open_store

BACKENDS = ("sqlite_1proc", "pg_1proc", "pg_2proc")


def log(message: str) -> None:
    print(f"bench.ledger: {message}", file=sys.stderr, flush=True)


def one_run(
    tmp: Path, cluster: PgCluster, backend: str, agents: int, movements: int, batch: int, n: int
) -> dict[str, Any]:
    db = (
        str(tmp / f"ledger-{n}.db")
        if backend == "sqlite_1proc"
        else cluster.create_database(f"b{n}")
    )
    with open_store(db) as store:
        tokens = make_agents(store, agents)
    procs = 2 if backend == "pg_2proc" else 1
    children: list[Child] = []
    with contextlib.ExitStack() as stack:
        urls = []
        for p in range(procs):
            port = free_port()
            argv = [*EDGETALLY, "ledger", "serve", "--db", db, "--port", str(port)]
            child = Child(f"ledger-{n}-{p}", argv, tmp, child_env())
            stack.callback(stop_quietly, child)
            children.append(child)
            urls.append(f"http://127.0.0.1:{port}")
        for child, url in zip(children, urls, strict=True):
            wait_healthy(child, url)
        per_agent = max(1, movements // agents)
        result = asyncio.run(run_agents(urls, tokens, per_agent, min(batch, per_agent), hot=False))
        for child in children:
            if not child.alive():
                raise child.died("under load")
    with open_store(db) as store:
        checked = audit(store, result.sent)
    return {
        "movements": result.movements,
        "movements_per_s": round(result.movements / result.elapsed_s, 1),
        "p99_batch_ms": round(pct(result.latencies_ms, 99), 1),
        "errors_5xx": result.errors_5xx,
        "lost": checked.lost,
        "duplicated": checked.duplicated,
        "on_hand_ok": checked.on_hand_matches_journal,
    }


def work(tmp: Path, movements: int, batch: int, agent_counts: Sequence[int]) -> dict[str, Any]:
    try:
        cluster = PgCluster(fsync=True).start()
    except ClusterError as exc:
        raise BenchError(str(exc)) from exc
    runs: dict[str, dict[str, Any]] = {b: {} for b in BACKENDS}
    try:
        n = 0
        for agents in agent_counts:
            for backend in BACKENDS:  # side by side: each agent count on every backend in turn
                n += 1
                row = one_run(tmp, cluster, backend, agents, movements, batch, n)
                log(f"{backend} {agents} agent(s): {row}")
                runs[backend][str(agents)] = row
    finally:
        cluster.stop()
    out: dict[str, Any] = {
        "cpu": cpu_model(),
        "movements_per_run": movements,
        "batch": batch,
        "runs": runs,
    }
    sqlite_1 = runs["sqlite_1proc"].get("1", {}).get("movements_per_s")
    pg_16 = [runs[b]["16"]["movements_per_s"] for b in ("pg_1proc", "pg_2proc") if "16" in runs[b]]
    out["sqlite_1agent_per_s"] = sqlite_1
    out["pg_16agents_per_s"] = max(pg_16) if pg_16 else None
    out["pg_16_vs_sqlite_1"] = round(max(pg_16) / sqlite_1, 2) if pg_16 and sqlite_1 else None
    at_64 = [runs[b]["64"] for b in ("pg_1proc", "pg_2proc") if "64" in runs[b]]
    out["pg_64agents_lost"] = sum(r["lost"] for r in at_64) if at_64 else None
    out["pg_64agents_duplicated"] = sum(r["duplicated"] for r in at_64) if at_64 else None
    out["pg_64agents_5xx"] = sum(r["errors_5xx"] for r in at_64) if at_64 else None
    return out


def main(argv: Sequence[str] | None = None, stdout: IO[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ledger", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--movements", type=int, default=6400, help="movements per run, all agents")
    parser.add_argument("--batch", type=int, default=20, help="movements per request")
    parser.add_argument(
        "--agents", default="1,4,16,64", help="concurrent agent counts, comma-separated"
    )
    parser.add_argument("--dir", type=Path, help="where the temp dir goes")
    args = parser.parse_args(argv)
    counts = [int(a) for a in args.agents.split(",") if a]
    return bench_main(
        "ledger",
        f"{args.movements} movements per run, batches of {args.batch}, agents {counts}",
        lambda tmp: work(tmp, args.movements, args.batch, counts),
        say=log,
        parent=args.dir,
        stdout=stdout,
    )


if __name__ == "__main__":
    sys.exit(main())
