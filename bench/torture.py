"""Kill -9 torture: a real agent under steady scan load, killed at random instants, restarted.

    python -m bench.torture [--kills 200] [--seed N] [--max-run-s 1.2] [--no-portal] [--dir DIR]

The reference ledger runs on loopback behind a byte-level relay that knows
when a sync request is in flight. Two simulated scanners feed one receiving
station: one in bursts (group commits), one a scan at a time (single
commits). An RFID portal reads as well: an ``llrp`` device on the reader
emulator (``edgetally sim llrp``, one process for the whole run, on a free
port) feeding a ``portal`` station. Its scenario, written to the temp dir,
drives six pallets back and forth through the door, passes overlapping, so
tag reads stream and crossings are decided in every round. Scenario time
restarts at each new connection, so every restarted agent sees the same
pallets cross the same way again: the portal's dedup must turn each repeat
of the crossing it decided last into no movement.

Each round starts ``edgetally run``, waits a random time (one round in ten
while it is still starting up, the rest after its first beep of the round
and, with the portal, its first stored tag read),
freezes it with SIGSTOP, notes whether it holds the outbox's write lock
(inside a commit), whether a request is in flight (inside a sync request) and
whether tag reads were streaming into the outbox (the newest stored tag read
less than ``TAG_STREAM_MS`` old), then SIGKILLs it. A stopped process runs
nothing more, so the kill lands exactly at the instant noted.

At the end an agent without devices drains the outbox and is stopped with
SIGTERM. Then:

- scanners: the ledger's journal against the scanner's ``ack_log`` (one line
  per beep, written before the next read): every read that got a good beep
  is in exactly one movement at the ledger;
- every movement the agent stored (the outbox's ``movements``, all states) is
  in the journal exactly once, and the journal holds none the outbox does not;
- portal: no crossing in two movements (two movements of one tag sharing
  reads, or one tag's movements in one direction twice in a row: the run is
  shorter than ``dedup_ms``, so the second would be a decided crossing
  counted again, e.g. from reads a restarted agent rebuilt a pass from).

Prints one JSON object: ``kills``, ``acknowledged``, ``delivered``, ``lost``,
``duplicated``, ``seq_gaps``, ``db_integrity`` (the outbox's ``PRAGMA
integrity_check``), the movement comparison, the portal's figures, and how
many kills landed at start-up, inside a commit, inside a sync request and
while tag reads were being stored. Bar (DESIGN §8): lost = duplicated = 0,
db_integrity ok; and here also no movement missing or unknown, no portal
crossing twice.
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
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from agent.cli import write_secret
from agent.demo.ports import free_port
from bench.common import (
    acknowledged_reads,
    delivery_report,
    gtin14,
    integrity,
    ledger_journal,
    movements_report,
    outbox_movement_ids,
    portal_report,
)
from bench.procs import bench_main
from ledger import LedgerStore

ROOT = Path(__file__).resolve().parents[1]
AGENT = "bench-torture"
EDGETALLY = [sys.executable, "-m", "agent.cli"]
STARTUP_KILL_SHARE = 0.1
FIRST_BEEP_TIMEOUT_S = 30.0
DRAIN_TIMEOUT_S = 300.0
EMULATOR_START_S = 30.0
TAG_STREAM_MS = 150  # a stored tag read younger than this at the stop: tags were streaming

# The portal's load. Scenario seconds run SPEED times faster than the wall clock. A
# pass takes (PATH_M + SPREAD_M) / PASS_MPS = 0.83 scenario s (0.28 wall s); the
# pallet's next pass, the other way, starts PERIOD_S after, leaving a gap of 0.19
# wall s: more than QUIET_MS, so two passes never merge into one track (which
# would be a turn-back). The six pallets start PERIOD_S / PALLETS apart, so tags
# are in the field all the time. A report every REPORT_MS gives each pass about
# 18: the portal orders the sides by when reads arrive (a report's reads arrive
# together), so reports must be much finer than a pass or sides tie.
PORTAL = "portal-1"
PORTAL_STATION = "door-2"
PALLETS = 6
TAGS_PER_PALLET = 3
SPEED = 3.0
PASS_MPS = 4.0
PATH_M = 3.0
SPREAD_M = 0.3
PERIOD_S = 1.4
OFFSETS_S = tuple(0.1 + p * PERIOD_S / PALLETS for p in range(PALLETS))
SCENARIO_S = 60.0  # passes keep coming for this long after each connection
REPORT_MS = 15
QUIET_MS = 120
MAX_TRACK_MS = 3000  # resume horizon (max_track_ms + quiet_ms) well past a restart


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


def write_scenario(tmp: Path) -> Path:
    """Six pallets of SGTIN-96 cases going in and out of the door, over and over.

    A tag group per pass: the same EPCs (same GTIN and serials) in each group
    of a pallet, the direction alternating; every other pallet goes out first.
    """
    lines = [
        'name = "torture-portal"\nseed = 11\n'
        f"speed = {SPEED}\nrate = 15\nsensitivity_dbm = -70\ndoor_db = 25\n"
        f"report_interval_s = {REPORT_MS / 1000}\n"
    ]
    for i in (1, 2, 3, 4):
        side, x = ("outside", -1.0) if i <= 2 else ("inside", 1.0)
        lines.append(f'[[antennas]]\nid = {i}\ngroup = "{side}"\nx = {x}\n')
    for p, offset in enumerate(OFFSETS_S):
        for j in range(int((SCENARIO_S - offset) // PERIOD_S) + 1):
            way = ("in", "out")[(j + p) % 2]
            lines.append(
                f'[[tags]]\nname = "pallet-{p}-pass-{j}"\ngtin = "00614141123452"\n'
                f"company_prefix_length = 7\nserial_start = {40000 + 100 * p}\n"
                f'count = {TAGS_PER_PALLET}\nfilter = 2\nmotion = "pass"\n'
                f'direction = "{way}"\nstart_s = {offset + j * PERIOD_S:.3f}\n'
                f"speed_mps = {PASS_MPS}\npath_m = {PATH_M}\nspread_m = {SPREAD_M}\n"
                "lateral_m = 1.0\nrssi_peak_dbm = -45\n"
            )
    path = tmp / "portal-scenario.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def write_config(
    tmp: Path,
    url: str,
    token_file: Path,
    scripts: Sequence[Path],
    ack_log: Path,
    log_level: str = "warning",
    reader_port: int | None = None,
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
    if reader_port is not None:
        parts.append(
            f'[[devices]]\nid = "{PORTAL}"\ndriver = "llrp"\nhost = "127.0.0.1"\n'
            f"port = {reader_port}\nantennas = [1, 2, 3, 4]\nreport_timeout_ms = {REPORT_MS}\n"
            "keepalive_s = 1.0\nreconnect_initial_s = 0.05\nreconnect_max_s = 0.2\n"
        )
        parts.append(
            f'[[stations]]\nname = "{PORTAL_STATION}"\nkind = "portal"\nlocation = "DOCK-2"\n'
            f'devices = ["{PORTAL}"]\noutside_antennas = [1, 2]\ninside_antennas = [3, 4]\n'
            f"quiet_ms = {QUIET_MS}\nmax_track_ms = {MAX_TRACK_MS}\n"
        )
    path = tmp / ("agent.toml" if names or reader_port is not None else "drain.toml")
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


async def start_emulator(tmp: Path, scenario: Path, port: int) -> asyncio.subprocess.Process:
    """``edgetally sim llrp`` on ``port``, once it says it is listening."""
    out_path = tmp / "emulator.log"
    out = out_path.open("ab")
    try:
        proc = await asyncio.create_subprocess_exec(
            *EDGETALLY, "sim", "llrp", "--scenario", str(scenario), "--port", str(port),
            cwd=ROOT, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
        )  # fmt: skip
    finally:
        out.close()
    deadline = time.monotonic() + EMULATOR_START_S
    while b"listening" not in out_path.read_bytes():
        if proc.returncode is not None or time.monotonic() > deadline:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            said = out_path.read_text(encoding="utf-8", errors="replace")[-500:]
            raise BenchError(f"the LLRP emulator did not start; it said: {said!r}")
        await asyncio.sleep(0.05)
    return proc


async def stop_emulator(proc: asyncio.subprocess.Process) -> None:
    """Ctrl+C, as its CLI expects; it exits 0."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise BenchError("the LLRP emulator did not stop within 30 s of SIGINT") from None
    if proc.returncode != 0:
        raise BenchError(f"the LLRP emulator stopped with exit code {proc.returncode}")


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


def newest_tag_read_ns(outbox: Path) -> int | None:
    """The agent's monotonic time of the newest stored tag read, if any is recent.

    Looks at the newest rows only (the table's key is a UUIDv7, in time order),
    so the cost stays flat as the outbox grows. The agent's ``mono_ns`` is this
    host's CLOCK_MONOTONIC, so it compares with ``time.monotonic_ns()`` here.
    """
    if not outbox.exists():
        return None
    conn = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute(
            "SELECT max(mono_ns) FROM"
            " (SELECT kind, mono_ns FROM reads ORDER BY id DESC LIMIT 2000) WHERE kind = 'tag'"
        ).fetchone()
    except sqlite3.OperationalError:  # no reads table yet: killed during its first start
        return None
    finally:
        conn.close()
    return None if row is None or row[0] is None else int(row[0])


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


def log_events(agent_log: Path, name: str) -> int:
    """How many times the agents writing to this log logged an event (lines cut by a
    kill -9 included: the name comes first)."""
    try:
        return agent_log.read_bytes().count(f'"event": "{name}"'.encode())
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
    ledger_port = free_port()
    ledger = await start_ledger(tmp, ledger_port)
    emulator: asyncio.subprocess.Process | None = None
    relay = Relay(ledger_port)
    try:
        await relay.start()
        reader_port = None
        if args.portal:
            reader_port = free_port()
            emulator = await start_emulator(tmp, write_scenario(tmp), reader_port)
        ack_log = tmp / "ack.jsonl"
        outbox = tmp / "outbox.db"
        agent_log = tmp / "agent.log"
        url = f"http://127.0.0.1:{relay.port}"
        config = write_config(
            tmp,
            url,
            token_file,
            write_scripts(tmp),
            ack_log,
            log_level="info",  # the portal's decisions and restarts are counted from the log
            reader_port=reader_port,
        )
        counts = dict.fromkeys(
            ("at_startup", "in_commit", "in_sync_request", "tags_streaming", "in_tag_commit"), 0
        )
        kills_at: list[float] = []
        started = time.perf_counter()
        for k in range(1, args.kills + 1):
            before = good_beeps(ack_log)
            launched_ns = time.monotonic_ns()
            agent = await start_agent(config, agent_log)
            if rng.random() < STARTUP_KILL_SHARE:
                counts["at_startup"] += 1
                await asyncio.sleep(rng.uniform(0, 0.4))
            else:
                # The portal's reads start later than the first beep (a reader's handshake,
                # then its reports): on a loaded host, a kill timed from the beep alone
                # can land before any, round after round, and the portal goes untested.
                deadline = time.monotonic() + FIRST_BEEP_TIMEOUT_S
                while good_beeps(ack_log) == before or (
                    args.portal
                    and (await asyncio.to_thread(newest_tag_read_ns, outbox) or 0) <= launched_ns
                ):
                    if agent.returncode is not None:
                        raise BenchError(
                            f"the agent exited with {agent.returncode}; see {agent_log}"
                        )
                    if time.monotonic() > deadline:
                        waited = "beep and stored tag read" if args.portal else "beep"
                        raise BenchError(f"no {waited} within {FIRST_BEEP_TIMEOUT_S:.0f} s")
                    await asyncio.sleep(0.005)
                await asyncio.sleep(rng.uniform(0, args.max_run_s))
            if agent.returncode is not None:
                raise BenchError(f"the agent exited with {agent.returncode}; see {agent_log}")
            agent.send_signal(signal.SIGSTOP)
            stopped_ns = time.monotonic_ns()
            kills_at.append(time.time())
            await asyncio.sleep(0.002)  # the stop is delivered to every thread
            if relay.in_flight:
                counts["in_sync_request"] += 1
            locked = await asyncio.to_thread(holds_write_lock, outbox)
            counts["in_commit"] += locked
            if args.portal:
                newest = await asyncio.to_thread(newest_tag_read_ns, outbox)
                streaming = (
                    newest is not None
                    and newest > launched_ns  # stored by this run, not the last one
                    and stopped_ns - newest < TAG_STREAM_MS * 1_000_000
                )
                counts["tags_streaming"] += streaming
                counts["in_tag_commit"] += streaming and locked
            agent.send_signal(signal.SIGKILL)
            await agent.wait()
            if k % max(1, args.kills // 10) == 0 or k == args.kills:
                log(f"kill {k}/{args.kills}: {good_beeps(ack_log):,} beeps so far")
        log("draining the outbox with an agent without devices")
        readies = ready_lines(agent_log)
        drain = await start_agent(
            write_config(tmp, url, token_file, [], ack_log, log_level="info"), agent_log
        )
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        # Ready first: a SIGTERM before the agent has its handlers would end it with -15.
        while ready_lines(agent_log) == readies or await asyncio.to_thread(pending, outbox) > 0:
            if drain.returncode is not None:
                raise BenchError(f"the draining agent exited with {drain.returncode}")
            if time.monotonic() > deadline:
                raise BenchError(f"the outbox did not drain within {DRAIN_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.05)
        await stop(drain, "the draining agent")
    finally:
        await relay.close()
        try:
            if emulator is not None:
                await stop_emulator(emulator)
        finally:
            await stop(ledger, "the ledger")
    elapsed = time.perf_counter() - started
    journal = ledger_journal(tmp / "ledger.db", AGENT)
    report = delivery_report(journal, acknowledged_reads(ack_log))
    stored = movements_report(outbox_movement_ids(outbox), journal)
    result: dict[str, Any] = {
        "bench": "torture",
        "kills": args.kills,
        "acknowledged": report["acknowledged"],
        "delivered": report["delivered"],
        "lost": report["lost"],
        "duplicated": report["duplicated"],
        "seq_gaps": report["seq_gaps"],
        "db_integrity": integrity(outbox),
        "ledger_integrity": integrity(tmp / "ledger.db"),
        **stored,
        "kills_at_startup": counts["at_startup"],
        "kills_in_commit": counts["in_commit"],
        "kills_in_sync_request": counts["in_sync_request"],
    }
    if args.portal:
        result.update(portal_report(outbox, journal, PORTAL_STATION, kills_at))
        result["portal_repeats_suppressed"] = log_events(agent_log, "portal_duplicate")
        result["restarts_that_rebuilt_passes"] = log_events(agent_log, "rfid_resumed")
        result["kills_while_tags_streaming"] = counts["tags_streaming"]
        result["kills_in_commit_while_tags_streaming"] = counts["in_tag_commit"]
    result.update(
        {
            "seed": args.seed,
            "max_run_s": args.max_run_s,
            "portal": args.portal,
            "elapsed_s": round(elapsed, 1),
        }
    )
    return result


def log_tail(path: Path, lines: int = 30) -> None:
    """The end of a log from the temp dir, to stderr, before the dir is removed."""
    try:
        tail = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return
    if tail:
        log(f"the last {len(tail)} lines of {path.name}:")
        print("\n".join(tail), file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.torture", description=(__doc__ or "").split("\n")[0]
    )
    p.add_argument("--kills", type=int, default=200, help="kill -9 rounds (default 200)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    p.add_argument(
        "--max-run-s",
        type=float,
        default=1.2,
        help="longest run after the first beep before the kill (default 1.2)",
    )
    p.add_argument(
        "--no-portal",
        dest="portal",
        action="store_false",
        help="leave the RFID portal (emulator, llrp device, portal station) out of the load",
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

    def show_logs(tmp: Path) -> None:
        for name in ("agent.log", "emulator.log", "ledger.log"):
            log_tail(tmp / name)

    return bench_main(
        "torture",
        f"kills={args.kills} seed={args.seed}",
        lambda tmp: asyncio.run(torture(args, tmp)),
        say=log,
        parent=args.dir,
        stdout=stdout,
        on_failure=show_logs,
    )


if __name__ == "__main__":
    sys.exit(main())
