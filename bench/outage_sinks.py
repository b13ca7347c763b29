"""bench.outage --sinks N: one buffered backlog drained to N sinks at once, beside the
single-sink drain of the same backlog in the same run.

Sinks, in this order: ``ledger`` (the reference ledger, [sync]'s url), ``mqtt`` (a
mosquitto from Debian's package on a free port, with a subscriber process that
writes every movement id it receives), ``ledger2`` (a second reference ledger,
another http-ledger sink). The backlog is made once and copied, so both runs
drain the same file.

1. Single: bench.outage's own outage phase on a copy (the ledger down, then back).
2. Several: the agent starts on the other copy with both ledgers down and the
   broker up (its subscriber subscribed first: MQTT keeps nothing for a subscriber
   that is not there yet, so the broker cannot be the one that comes back). Each
   sink's drain runs from when it could take movements (the agent's first
   ``mqtt_connected``; both ledgers healthy again) to its own backlog reaching 0,
   read from the outbox's per-sink state.

Per sink: ``drain_s``, ``drain_per_s``, ``lost`` (buffered ids it never got) and
``duplicated`` (ids it got twice; for MQTT, copies beyond the first).
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from agent.demo.broker import MosquittoBroker
from agent.outbox import read_sink_pending
from bench.backlog import AGENT, MAX_BYTES
from bench.common import delivery_report, ledger_journal
from bench.procs import BenchError, Child, child_env, free_port, stop_quietly, wait_healthy

SINKS = ("ledger", "mqtt", "ledger2")


def _log(message: str) -> None:
    print(f"bench.outage: {message}", file=sys.stderr, flush=True)


def copy_outbox(src: Path, dst_dir: Path) -> Path:
    dst_dir.mkdir()
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{src}{suffix}").exists():
            shutil.copyfile(f"{src}{suffix}", dst_dir / f"outbox.db{suffix}")
    return dst_dir / "outbox.db"


def write_config(
    tmp: Path, urls: dict[str, str], tokens: dict[str, Path], port: int | None, args: Any
) -> Path:
    delivery = (
        f"batch_max = {args.batch}\ntimeout_s = 30\nbackoff_initial_s = 0.1\n"
        f"backoff_cap_s = {args.backoff_cap_s}\n"
    )
    text = (
        f'[agent]\nid = "{AGENT}"\nstate_dir = "{tmp}"\nlog_level = "info"\n\n'
        f'[outbox]\npath = "outbox.db"\nmax_bytes = {MAX_BYTES}\n\n'
        f'[sync]\nurl = "{urls["ledger"]}"\ntoken_file = "{tokens["ledger"]}"\n{delivery}\n'
    )
    if port is not None:
        text += (
            f'[[sync.sink]]\nname = "mqtt"\ntype = "mqtt"\nhost = "127.0.0.1"\nport = {port}\n\n'
        )
    if "ledger2" in urls:
        text += (
            f'[[sync.sink]]\nname = "ledger2"\ntype = "http-ledger"\nurl = "{urls["ledger2"]}"\n'
            f'token_file = "{tokens["ledger2"]}"\n\n'
        )
    text += '[health]\nlisten = ""\n'
    path = tmp / "agent.toml"
    path.write_text(text, encoding="utf-8")
    return path


def sink_pending(outbox: Path, names: tuple[str, ...]) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True)
    try:
        return read_sink_pending(conn, names)
    finally:
        conn.close()


def several(tmp: Path, outbox: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Phase 2: the agent on N sinks; each sink's drain timed from when it could take them."""
    from bench.outage import EDGETALLY, new_ledger, start_ledger

    names = SINKS[: args.sinks]
    dbs, tokens, urls, ports = {}, {}, {}, {}
    for name in (n for n in names if n.startswith("ledger")):
        dbs[name], tokens[name], _ = new_ledger(tmp, name)
        ports[name] = free_port()
        urls[name] = f"http://127.0.0.1:{ports[name]}"
    broker: MosquittoBroker | None = None
    subscriber: subprocess.Popen[bytes] | None = None
    ids_file = tmp / "mqtt-ids.txt"
    agent: Child | None = None
    ledgers: list[Child] = []
    try:
        if "mqtt" in names:
            broker = MosquittoBroker().start()
            subscriber = subprocess.Popen(
                [sys.executable, "-m", "bench.mqtt_count", "--port", str(broker.port),
                 "--topic", f"edgetally/{AGENT}/+/movements", "--out", str(ids_file)],
                stdout=subprocess.PIPE, env=child_env(),
            )  # fmt: skip
            assert subscriber.stdout is not None
            if subscriber.stdout.readline().strip() != b"subscribed":
                raise BenchError("the MQTT subscriber did not subscribe")
        config = write_config(tmp, urls, tokens, broker.port if broker else None, args)
        agent = Child("agent", [*EDGETALLY, "run", "--config", str(config)], tmp, child_env())
        deadline = time.monotonic() + 120
        ledger_names = [n for n in names if n.startswith("ledger")]
        while agent.events["sync_failed"] < 2 * len(ledger_names):
            if not agent.alive():
                raise agent.died("waiting for the ledgers")
            if time.monotonic() > deadline:
                raise BenchError("the agent did not try the ledgers within 120 s")
            time.sleep(0.02)
        _log(f"agent failing on {len(ledger_names)} ledger(s); they return")
        for name in ledger_names:
            ledgers.append(start_ledger(tmp, f"{name}-proc", dbs[name], ports[name]))
            wait_healthy(ledgers[-1], urls[name], timeout=60)
        ledgers_back = time.monotonic()
        started = {n: ledgers_back for n in ledger_names}
        done: dict[str, float] = {}
        deadline = time.monotonic() + args.drain_timeout_s
        while len(done) < len(names):
            time.sleep(0.1)
            now = time.monotonic()
            if "mqtt" not in started and "mqtt_connected" in agent.event_at:
                started["mqtt"] = agent.event_at["mqtt_connected"]
            for name, left in sink_pending(outbox, names).items():
                if left == 0 and name not in done:
                    done[name] = now
            if not agent.alive():
                raise agent.died("draining")
            if now > deadline:
                raise BenchError(f"not drained after {args.drain_timeout_s:.0f} s: {done}")
        agent.stop()
        for child in ledgers:
            child.stop()
    finally:
        if agent is not None:
            stop_quietly(agent)
        for child in ledgers:
            stop_quietly(child)
        if subscriber is not None:
            subscriber.terminate()
            subscriber.wait(60)
        if broker is not None:
            broker.close()
    return {"names": names, "started": started, "done": done, "dbs": dbs, "ids": ids_file}


def report(outbox: Path, result: dict[str, Any], n: int) -> dict[str, Any]:
    from bench.outage import movement_ids

    stored = movement_ids(outbox)
    out: dict[str, Any] = {}
    for name in result["names"]:
        seconds = result["done"][name] - result["started"][name]
        if name == "mqtt":
            got = result["ids"].read_text(encoding="ascii").split()
            lost, duplicated = len(stored - set(got)), len(got) - len(set(got))
        else:
            journal = ledger_journal(result["dbs"][name], AGENT)
            lost = len(stored - {e["id"] for e in journal})
            duplicated = delivery_report(journal, [])["duplicated"]
        out[name] = {
            "drain_s": round(seconds, 2),
            "drain_per_s": round(n / seconds, 1),
            "lost": lost,
            "duplicated": duplicated,
        }
    return out


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from bench.backlog import file_bytes, prefill
    from bench.outage import STATIONS, outage

    started = time.perf_counter()
    source = tmp / "prefilled.db"
    filled = prefill(source, STATIONS, args.movements)
    outbox_mb = file_bytes(source) / 2**20
    single_dir, multi_dir = tmp / "single", tmp / "several"
    single_box = copy_outbox(source, single_dir)
    multi_box = copy_outbox(source, multi_dir)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{source}{suffix}").unlink(missing_ok=True)
    _log(f"single sink: {args.movements:,} movements to one ledger")
    single = outage(single_dir, single_box, args)
    single_journal = ledger_journal(single["db"], AGENT)
    single_per_s = args.movements / single["drain_s"]
    _log(f"{args.sinks} sinks: {', '.join(SINKS[: args.sinks])}")
    result = several(multi_dir, multi_box, args)
    sinks = report(multi_box, result, args.movements)
    return {
        "bench": "outage",
        "sinks": args.sinks,
        "buffered": args.movements,
        "outbox_mb": round(outbox_mb, 1),
        "single_sink_drain_s": round(single["drain_s"], 2),
        "single_sink_drain_per_s": round(single_per_s, 1),
        "single_sink_lost": len({e["id"] for e in single_journal} ^ _ids(single_box)),
        "single_sink_duplicated": delivery_report(single_journal, [])["duplicated"],
        "per_sink": sinks,
        "per_sink_vs_single": {
            name: round(s["drain_per_s"] / single_per_s, 3) for name, s in sinks.items()
        },
        "all_drained_s": round(max(result["done"].values()) - min(result["started"].values()), 2),
        "lost": sum(s["lost"] for s in sinks.values()),
        "duplicated": sum(s["duplicated"] for s in sinks.values()),
        "batch": args.batch,
        "prefill_per_s": filled["per_s"],
        "elapsed_s": round(time.perf_counter() - started, 1),
    }


def _ids(outbox: Path) -> set[str]:
    from bench.outage import movement_ids

    return movement_ids(outbox)
