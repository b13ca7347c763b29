"""Kill -9 torture: a real agent under steady scan load, killed at random instants, restarted.

    python -m bench.torture [--kills 200] [--seed N] [--max-run-s 0.8] [--dir DIR]

The reference ledger runs on loopback behind a byte-level relay that knows
when a sync request is in flight. Two simulated scanners feed one receiving
station: one in bursts (group commits), one a scan at a time (single
commits). Each round starts ``edgetally run``, waits a random time (one round
in ten while it is still starting up, the rest after its first beep of the
round), freezes it with SIGSTOP, notes whether it holds the outbox's write
lock (inside a commit) and whether a request is in flight (inside a sync
request), then SIGKILLs it. A stopped process runs nothing more, so the kill
lands exactly at the instant noted.

At the end an agent without scanners drains the outbox and is stopped with
SIGTERM. The ledger's journal is compared with the scanner's ``ack_log``
(one line per beep, written before the next read): every read that got a
good beep must be in exactly one movement at the ledger.

Prints one JSON object: ``kills``, ``acknowledged``, ``delivered``, ``lost``,
``duplicated``, ``db_integrity`` (the outbox's ``PRAGMA integrity_check``),
and how many kills landed at start-up, inside a commit and inside a sync
request. Bar (DESIGN §8): lost = duplicated = 0, db_integrity ok.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from agent.cli import write_secret
from bench.common import acknowledged_reads, delivery_report, gtin14, integrity, ledger_journal
from ledger import LedgerStore

ROOT = Path(__file__).resolve().parents[1]
AGENT = "bench-torture"
EDGETALLY = [sys.executable, "-m", "agent.cli"]
STARTUP_KILL_SHARE = 0.1
FIRST_BEEP_TIMEOUT_S = 30.0
DRAIN_TIMEOUT_S = 300.0


class BenchError(RuntimeError):
    """The benchmark could not run as intended; the message says why."""


def log(message: str) -> None:
    print(f"bench.torture: {message}", file=sys.stderr, flush=True)


# ---- the load ----------------------------------------------------------------------------


def write_scripts(tmp: Path) -> tuple[Path, Path]:
    """A bursty scanner (20 reads at once, then a pause) and a one-at-a-time scanner."""
    burst = tmp / "burst.jsonl"
    single = tmp / "single.jsonl"
    lines = []
    for i in range(400):
        lines.append(
            {"data": gtin14(f"095060003{i % 50:04d}"), "delay": 0.03 if i % 20 == 0 else 0}
        )
    burst.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    lines = [{"data": gtin14(f"095060004{i % 50:04d}"), "delay": 0.01} for i in range(100)]
    single.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return burst, single


def write_config(
    tmp: Path,
    url: str,
    token_file: Path,
    scripts: Sequence[Path],
    ack_log: Path,
    log_level: str = "warning",
) -> Path:
    parts = [
        f'[agent]\nid = "{AGENT}"\nstate_dir = {json.dumps(str(tmp))}\nlog_level = "{log_level}"\n',
        '[outbox]\npath = "outbox.db"\n',
        f"[sync]\nurl = {json.dumps(url)}\ntoken_file = {json.dumps(str(token_file))}\n"
        "timeout_s = 5\nbackoff_initial_s = 0.05\nbackoff_cap_s = 0.5\n",
        '[health]\nlisten = ""\n',
    ]
    names = []
    for n, script in enumerate(scripts, start=1):
        names.append(f"scanner-{n}")
        parts.append(
            f'[[devices]]\nid = "scanner-{n}"\ndriver = "simulated"\n'
            f"script = {json.dumps(str(script))}\nrepeat = true\n"
            f"ack_log = {json.dumps(str(ack_log))}\n"
        )
    if names:
        parts.append(
            '[[stations]]\nname = "dock-1"\nkind = "receiving"\nlocation = "DOCK-1"\n'
            f"devices = {json.dumps(names)}\n"
        )
    path = tmp / ("agent.toml" if names else "drain.toml")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


# ---- a relay that knows when a request is in flight --------------------------------------


@dataclass
class Relay:
    """Bytes both ways between agent and ledger; a connection is "in flight" from the
    first request byte until the first response byte."""

    upstream: int
    port: int = 0
    in_flight: set[int] = field(default_factory=set)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        key = id(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            writer.close()
            self._tasks.discard(task)
            return
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, lambda: self.in_flight.add(key)),
                self._pump(up_reader, writer, lambda: self.in_flight.discard(key)),
            )
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self.in_flight.discard(key)
            writer.close()
            up_writer.close()
            self._tasks.discard(task)

    @staticmethod
    async def _pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, seen: Any) -> None:
        while data := await src.read(65536):
            seen()
            dst.write(data)
            await dst.drain()
        with contextlib.suppress(OSError):
            dst.write_eof()


# ---- processes ---------------------------------------------------------------------------


async def start_ledger(tmp: Path, port: int) -> asyncio.subprocess.Process:
    out = (tmp / "ledger.log").open("ab")
    try:
        proc = await asyncio.create_subprocess_exec(
            *EDGETALLY, "ledger", "serve", "--db", str(tmp / "ledger.db"), "--port", str(port),
            cwd=ROOT, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
        )  # fmt: skip
    finally:
        out.close()  # the child has its own descriptor
    url = f"http://127.0.0.1:{port}/healthz"
    async with httpx.AsyncClient(timeout=1) as client:
        for _ in range(400):
            if proc.returncode is not None:
                raise BenchError(f"the ledger exited at start; see {tmp / 'ledger.log'}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(url)).status_code == 200:
                    return proc
            await asyncio.sleep(0.05)
    raise BenchError("the ledger did not become healthy")


async def start_agent(config: Path, log_path: Path) -> asyncio.subprocess.Process:
    out = log_path.open("ab")
    try:
        return await asyncio.create_subprocess_exec(
            *EDGETALLY, "run", "--config", str(config),
            cwd=ROOT, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    finally:
        out.close()


async def stop(proc: asyncio.subprocess.Process, what: str) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise BenchError(f"{what} did not stop within 30 s of SIGTERM") from None
    if proc.returncode != 0:
        raise BenchError(f"{what} stopped with exit code {proc.returncode}")


def holds_write_lock(outbox: Path) -> bool:
    """While the agent is frozen: does it hold the outbox's write lock (inside a commit)?"""
    if not outbox.exists():
        return False
    conn = sqlite3.connect(f"file:{outbox}?mode=rw", uri=True, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return True
    else:
        conn.execute("ROLLBACK")
        return False
    finally:
        conn.close()


def pending(outbox: Path) -> int:
    conn = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True)
    try:
        return int(
            conn.execute("SELECT count(*) FROM movements WHERE state = 'pending'").fetchone()[0]
        )
    finally:
        conn.close()


def ready_lines(agent_log: Path) -> int:
    """How many times an agent writing to this log has said it is ready."""
    try:
        return agent_log.read_bytes().count(b'"event": "ready"')
    except FileNotFoundError:
        return 0


def good_beeps(ack_log: Path) -> int:
    """Beeps so far, cheaply (the log only grows): good and bad lines alike."""
    try:
        with ack_log.open("rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


# ---- run ---------------------------------------------------------------------------------


async def torture(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    with LedgerStore(tmp / "ledger.db") as store:
        token = store.add_agent(AGENT)
    token_file = tmp / "token"
    write_secret(token_file, token)
    ledger_port = _free_port()
    ledger = await start_ledger(tmp, ledger_port)
    relay = Relay(ledger_port)
    await relay.start()
    ack_log = tmp / "ack.jsonl"
    outbox = tmp / "outbox.db"
    agent_log = tmp / "agent.log"
    url = f"http://127.0.0.1:{relay.port}"
    config = write_config(tmp, url, token_file, write_scripts(tmp), ack_log)
    counts = {"at_startup": 0, "in_commit": 0, "in_sync_request": 0}
    started = time.perf_counter()
    try:
        for k in range(1, args.kills + 1):
            before = good_beeps(ack_log)
            agent = await start_agent(config, agent_log)
            if rng.random() < STARTUP_KILL_SHARE:
                counts["at_startup"] += 1
                await asyncio.sleep(rng.uniform(0, 0.4))
            else:
                deadline = time.monotonic() + FIRST_BEEP_TIMEOUT_S
                while good_beeps(ack_log) == before:
                    if agent.returncode is not None:
                        raise BenchError(
                            f"the agent exited with {agent.returncode}; see {agent_log}"
                        )
                    if time.monotonic() > deadline:
                        raise BenchError(f"no beep within {FIRST_BEEP_TIMEOUT_S:.0f} s")
                    await asyncio.sleep(0.005)
                await asyncio.sleep(rng.uniform(0, args.max_run_s))
            if agent.returncode is not None:
                raise BenchError(f"the agent exited with {agent.returncode}; see {agent_log}")
            agent.send_signal(signal.SIGSTOP)
            await asyncio.sleep(0.002)  # the stop is delivered to every thread
            if relay.in_flight:
                counts["in_sync_request"] += 1
            if await asyncio.to_thread(holds_write_lock, outbox):
                counts["in_commit"] += 1
            agent.send_signal(signal.SIGKILL)
            await agent.wait()
            if k % max(1, args.kills // 10) == 0 or k == args.kills:
                log(f"kill {k}/{args.kills}: {good_beeps(ack_log):,} beeps so far")
        log("draining the outbox with a scanner-less agent")
        readies = ready_lines(agent_log)
        drain = await start_agent(
            write_config(tmp, url, token_file, [], ack_log, log_level="info"), agent_log
        )
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        # Ready first: a SIGTERM before the agent has its handlers would end it with -15.
        while ready_lines(agent_log) == readies or await asyncio.to_thread(pending, outbox):
            if drain.returncode is not None:
                raise BenchError(f"the draining agent exited with {drain.returncode}")
            if time.monotonic() > deadline:
                raise BenchError(f"the outbox did not drain within {DRAIN_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.05)
        await stop(drain, "the draining agent")
    finally:
        await relay.close()
        await stop(ledger, "the ledger")
    elapsed = time.perf_counter() - started
    report = delivery_report(ledger_journal(tmp / "ledger.db", AGENT), acknowledged_reads(ack_log))
    return {
        "bench": "torture",
        "kills": args.kills,
        "acknowledged": report["acknowledged"],
        "delivered": report["delivered"],
        "lost": report["lost"],
        "duplicated": report["duplicated"],
        "seq_gaps": report["seq_gaps"],
        "db_integrity": integrity(outbox),
        "ledger_integrity": integrity(tmp / "ledger.db"),
        "kills_at_startup": counts["at_startup"],
        "kills_in_commit": counts["in_commit"],
        "kills_in_sync_request": counts["in_sync_request"],
        "seed": args.seed,
        "max_run_s": args.max_run_s,
        "elapsed_s": round(elapsed, 1),
    }


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.torture", description=(__doc__ or "").split("\n")[0]
    )
    p.add_argument("--kills", type=int, default=200, help="kill -9 rounds (default 200)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    p.add_argument(
        "--max-run-s",
        type=float,
        default=0.8,
        help="longest run after the first beep before the kill (default 0.8)",
    )
    p.add_argument("--dir", type=Path, default=None, help="where to make the temp dir")
    args = p.parse_args(argv)
    if args.kills < 1:
        p.error("--kills must be at least 1")
    if not args.max_run_s > 0:
        p.error("--max-run-s must be more than 0")
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**32)
    return args


def main(argv: Sequence[str] | None = None, stdout: IO[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="edgetally-torture-", dir=args.dir) as tmp:
        log(f"kills={args.kills} seed={args.seed} in {tmp}")
        try:
            result = asyncio.run(torture(args, Path(tmp)))
        except (BenchError, OSError) as exc:
            log(f"failed: {exc}")
            return 1
    print(json.dumps(result, indent=2), file=stdout or sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
