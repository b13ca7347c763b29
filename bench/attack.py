"""The ledger attacked (issue 18): what holds, measured on a real ledger process.

    python -m bench.attack [--flood 1100] [--nofile 1024] [--batches 40] [--batch 20] [--dir DIR]

One ``edgetally ledger serve`` process on SQLite, started under a descriptor
limit of ``--nofile`` (systemd's default soft limit), with agents dock-a and
dock-b (dock-b limited to its own dock). Then:

- ``slow_client_flood``: a legitimate agent posts ``--batches`` batches of
  ``--batch`` movements with no flood (``quiet``), then again while ``--flood``
  sockets each hold a half-sent request head (reopened as the ledger cuts them,
  for as long as the agent posts). Per phase: p50/p99/max latency of a batch
  (first send to its 200), ``errors`` (any other answer or a transport error);
  and how many flood sockets the ledger cut. Holds when errors are 0 and p99
  stays within seconds.
- ``oversized_evidence``: one movement with 7 MiB of evidence: its result must
  be ``rejected`` (with the reason), not applied.
- ``cross_agent_reads``: dock-b's token reads dock-a's journal, all stock, the
  fleet and the alarms, ships from dock-a's dock, and reuses dock-a's movement
  id: every one must be refused (and the reused id's answer must not say it exists).

``holds`` is true when every outcome held.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import httpx

from bench.common import pct
from bench.procs import (
    EDGETALLY,
    BenchError,
    Child,
    bench_main,
    child_env,
    free_port,
    stop_quietly,
)
from ledger.store import FOREIGN_REASON, LedgerStore

HALF_HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-a: "
# Runs the ledger under a descriptor limit, then becomes it (no prlimit(1) needed).
LIMITED = (
    "import os, resource, sys; n = int(sys.argv[1]); "
    "resource.setrlimit(resource.RLIMIT_NOFILE, (n, n)); os.execvp(sys.argv[2], sys.argv[2:])"
)


def log(message: str) -> None:
    print(f"bench.attack: {message}", file=sys.stderr, flush=True)


def movement(agent: str, seq: int, to: str = "DOCK-A", **extra: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "agent": agent,
        "seq": seq,
        "kind": "receive",
        "item": {"gtin": "09506000134352"},
        "qty": 1,
        "to": to,
        "station": "recv-1",
        "device": "scanner-1",
        "observed_at": "2026-05-01T10:00:00Z",
        "clock": {"synced": True, "boot_id": "b", "mono_ns": 1},
        **extra,
    }


class Flood:
    """``n`` sockets each holding half a request head, reopened as the ledger cuts them."""

    def __init__(self, port: int, n: int) -> None:
        self.port, self.n = port, n
        self.cut = 0
        self.opened = 0
        self.filled = threading.Event()  # all n were open at once, at least once
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flood", daemon=True)

    def __enter__(self) -> Flood:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _open(self) -> socket.socket | None:
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
            s.sendall(HALF_HEAD)
            s.setblocking(False)
            self.opened += 1
            return s
        except OSError:
            self.cut += 1
            return None

    def _run(self) -> None:
        import selectors

        sel = selectors.DefaultSelector()
        try:
            while not self._stop.is_set():
                while len(sel.get_map()) < self.n and not self._stop.is_set():
                    s = self._open()
                    if s is not None:
                        sel.register(s, selectors.EVENT_READ)
                self.filled.set()
                for key, _ in sel.select(timeout=0.1):
                    s = key.fileobj
                    assert isinstance(s, socket.socket)
                    with contextlib.suppress(OSError):
                        if s.recv(1024):
                            continue  # an answer (408/400): closed below all the same
                    sel.unregister(s)
                    s.close()
                    self.cut += 1
        finally:
            for key in list(sel.get_map().values()):
                key.fileobj.close()  # type: ignore[union-attr]
            sel.close()


def post_batches(
    url: str, token: str, batches: int, size: int, seq0: int, min_s: float = 0.0
) -> dict[str, Any]:
    """The legitimate agent: batches one after another, each retried until it is answered;
    at least ``batches``, and more until ``min_s`` seconds have passed."""
    latencies: list[float] = []
    errors = 0
    seq = seq0
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as client:
        began = time.perf_counter()
        while len(latencies) < batches or time.perf_counter() - began < min_s:
            body: dict[str, Any] = {"agent": "dock-a", "movements": []}
            for _ in range(size):
                seq += 1
                body["movements"].append(movement("dock-a", seq))
            started = time.perf_counter()
            while True:
                try:
                    r = client.post("/v1/movements", json=body)
                    if r.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                errors += 1
                if time.perf_counter() - started > 60:
                    break
            latencies.append((time.perf_counter() - started) * 1000)
    return {
        "batches": len(latencies),
        "errors": errors,
        "p50_ms": round(pct(latencies, 50), 1),
        "p99_ms": round(pct(latencies, 99), 1),
        "max_ms": round(max(latencies), 1),
        "seq": seq,
    }


def cross_agent(url: str, tokens: dict[str, str]) -> dict[str, Any]:
    a = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens['dock-a']}"})
    b = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens['dock-b']}"})
    with a, b:
        first = movement("dock-a", 100_000)
        a.post("/v1/movements", json={"agent": "dock-a", "movements": [first]})
        out: dict[str, Any] = {
            "read_other_journal": b.get("/v1/movements", params={"agent": "dock-a"}).status_code,
            "read_all_stock": b.get("/v1/stock").status_code,
            "read_fleet": b.get("/v1/agents").status_code,
            "read_alarms": b.get("/v1/alarms").status_code,
        }
        ship = {**movement("dock-b", 1), "kind": "ship", "from": "DOCK-A", "to": None}
        r = b.post("/v1/movements", json={"agent": "dock-b", "movements": [ship]})
        out["ship_from_other_dock"] = r.json()["results"][0]["status"]
        reused = {**first, "agent": "dock-b", "to": "DOCK-B"}
        r = b.post("/v1/movements", json={"agent": "dock-b", "movements": [reused]})
        result = r.json()["results"][0]
        out["reuse_other_agents_id"] = result["status"]
        out["reuse_answer_reveals_nothing"] = result.get("reason") == FOREIGN_REASON
    out["refused"] = (
        all(
            out[k] == 403
            for k in ("read_other_journal", "read_all_stock", "read_fleet", "read_alarms")
        )
        and out["ship_from_other_dock"] == "rejected"
        and out["reuse_other_agents_id"] == "rejected"
        and out["reuse_answer_reveals_nothing"]
    )
    return out


def oversized(url: str, token: str) -> dict[str, Any]:
    big = movement("dock-a", 200_000, evidence={"raw": "x" * (7 * 1024 * 1024)})
    started = time.perf_counter()
    r = httpx.post(
        f"{url}/v1/movements",
        json={"agent": "dock-a", "movements": [big]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    result = r.json().get("results", [{}])[0] if r.status_code == 200 else {}
    return {
        "http_status": r.status_code,
        "result": result.get("status"),
        "reason": result.get("reason") or r.json().get("error"),
        "ms": round((time.perf_counter() - started) * 1000, 1),
        "refused": r.status_code in (200, 413) and result.get("status") != "applied",
    }


def work(tmp: Path, flood_n: int, nofile: int, batches: int, size: int) -> dict[str, Any]:
    db = tmp / "ledger.db"
    with LedgerStore(db) as store:
        tokens = {a: store.add_agent(a) for a in ("dock-a", "dock-b")}
        store.set_locations("dock-b", ["DOCK-B"])
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-c", LIMITED, str(nofile), *EDGETALLY]
    argv += ["ledger", "serve", "--db", str(db), "--port", str(port)]
    child = Child("ledger", argv, tmp, child_env())
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            if not child.alive():
                raise child.died("starting")
            if time.monotonic() > deadline:
                raise child.died("coming up")
            time.sleep(0.05)
        log(f"quiet: {batches} batches of {size}")
        quiet = post_batches(url, tokens["dock-a"], batches, size, 0)
        log(f"flood: {flood_n} half-sent heads while the agent posts")
        with Flood(port, flood_n) as flood:
            if not flood.filled.wait(60):
                raise BenchError(f"could not open {flood_n} sockets to the ledger in 60 s")
            # Past the ledger's 5 s head deadline, so its cuts at the deadline show too.
            flooded = post_batches(url, tokens["dock-a"], batches, size, quiet["seq"], 8.0)
        flooded["flood_sockets"] = flood_n
        flooded["flood_opened"] = flood.opened
        flooded["flood_cut_by_ledger"] = flood.cut
        held = flooded["errors"] == 0 and flooded["p99_ms"] < 5000
        log("oversized evidence, cross-agent reads")
        big = oversized(url, tokens["dock-a"])
        cross = cross_agent(url, tokens)
        emfile = "Too many open files" in (tmp / "ledger.stderr").read_text(errors="replace")
        if not child.alive():
            raise child.died("under attack")
    finally:
        stop_quietly(child)
    for phase in (quiet, flooded):
        phase.pop("seq")
    return {
        "nofile": nofile,
        "slow_client_flood": {
            "quiet": quiet,
            "flooded": flooded,
            "ledger_ran_out_of_descriptors": emfile,
            "held": held and not emfile,
        },
        "oversized_evidence": big,
        "cross_agent_reads": cross,
        "holds": held and not emfile and big["refused"] and cross["refused"],
    }


def main(argv: Sequence[str] | None = None, stdout: IO[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.attack", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--flood", type=int, default=1100, help="half-sent heads held open")
    parser.add_argument("--nofile", type=int, default=1024, help="the ledger's descriptor limit")
    parser.add_argument("--batches", type=int, default=40, help="legitimate batches per phase")
    parser.add_argument("--batch", type=int, default=20, help="movements per batch")
    parser.add_argument("--dir", type=Path, help="where the temp dir goes")
    args = parser.parse_args(argv)
    return bench_main(
        "attack",
        f"{args.flood} slow clients against a ledger limited to {args.nofile} descriptors",
        lambda tmp: work(tmp, args.flood, args.nofile, args.batches, args.batch),
        say=log,
        parent=args.dir,
        stdout=stdout,
    )


if __name__ == "__main__":
    sys.exit(main())
