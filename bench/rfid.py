"""The RFID pipeline against its bar (DESIGN §8), side by side in one run.

    python -m bench.rfid [--reads 100000] [--rounds 5] [--tags 20] [--profile out.prof] [--quick]

Prints one JSON object on stdout; progress goes to stderr. Every file lives in
one temp dir that is removed at the end.

The reader is the LLRP emulator as a real process (``edgetally sim llrp``) in
``flood`` mode: once a client's ROSpec starts it writes pre-encoded
RO_ACCESS_REPORTs (100 tag reads each: SGTIN-96, antenna, peak RSSI, first/last
seen, seen count 1) as fast as the socket takes them, ``--reads`` tag reads per
session. ``--tags`` tags are in the field (20 by default, each on one of the 4
antennas), read in turn, so a report holds each (tag, antenna) 100 / tags
times, as a reader that reports every singulation sends them; ``--tags 1000``
makes every entry of a report a different tag (nothing to fold). Both sides connect to that same process, one after the other, and get
the same frames; being in its own process, it takes no CPU from either side.

1. sllurp bare decode (``sllurp_decode_reads_per_s``): sllurp's ``LLRPClient``
   state machine configures the reader over an asyncio connection; every frame
   is read off the socket and decoded by sllurp's ``LLRPMessage`` and handed
   to the client's ``handleMessage``; the tags of each RO_ACCESS_REPORT are
   counted, nothing more. That is the ceiling: what any Python client built on
   sllurp pays before doing anything with a tag.
2. The pipeline (``pipeline_reads_per_s``): the agent's real ``Daemon``, in
   this process (its own asyncio loop, its outbox writer thread), with a
   ``[[devices]] driver = "llrp"`` on the emulator and one RFID station on it
   (``portal`` when the rules have it, else ``receiving``); the outbox is a
   real file with ``synchronous=FULL``; JSON logs at level info go to
   /dev/null as they would go to the journal. The ledger is unreachable (a
   closed loopback port): the bar is LLRP -> movements -> outbox, and sync
   would compete with the pipeline for the one loop. In-process rather than a
   ``edgetally run`` child so the count of stored reads is read from the
   daemon's own counters every few ms, not inferred from logs; it is the same
   code, configured from the same TOML. The driver folds the repeats of one
   (tag, antenna) in a report into one counted read (``fold_repeats``, the
   default); ``pipeline_unfolded_reads_per_s`` is the same pipeline with
   ``fold_repeats = false`` (one Read and one row per entry), measured in the
   same rounds, as the before and after of the fold. Once ready the daemon keeps
   start-up's objects out of Python's full collections and puts them back when
   it stops (``agent.memory``), so the sllurp rounds run with the collector as
   they found it.

Rates count tag reads (TagReportData entries), the same unit on every side.
They are steady state: the count from the moment ``--warmup`` of the reads
(10%) are through to the last one, over that time, so connect, reader
configuration and start-up are left out; for the pipeline the last
``--warmup`` share is left out as well, since what its queues hold when the
reader stops is stored without waiting for the socket. Rounds alternate which side goes
first; headline numbers are medians and ``ratio`` is the ratio of medians;
``ratio_median_of_rounds`` is the median of each round's ratio (its two sides run one
after the other, so a shared machine's load swings less between them). Over the same
window each side's CPU time (every thread of this process) per tag read is taken too:
``sllurp_decode_cpu_us_per_read``, ``pipeline_cpu_us_per_read`` (the outbox writer
thread included) and their ratio ``ratio_cpu``, which the machine's load moves less
than the rates.
After each pipeline round the outbox is checked: the rows' seen counts add up
to exactly the tag reads sent, every row has an outcome (nothing dropped), and
``rows_per_tag_read`` is rows stored over tag reads; ``movements`` is what the
station made.
``--profile`` runs one more pipeline round under cProfile and writes it there
(not counted in the figures).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import importlib.metadata
import logging
import os
import platform
import pstats
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sllurp.llrp import LLRPClient, LLRPMessage, LLRPReaderState

from agent import logs
from agent.config import load_config
from agent.daemon import Daemon
from agent.rules.engine import STATIONS
from bench.common import cpu_model
from bench.procs import EDGETALLY, ROOT, BenchError, bench_main, free_port
from drivers.llrp_link import HEADER_LEN, frame_length
from drivers.llrp_settings import LlrpSettings, reader_config

AGENT = "bench-portal-1"
DEVICE = "dock-1-portal"
READER_RATE = 1_100  # a fast reader's tag reads per second (DESIGN §8)
RATIO_BAR = 0.7
RATE_BAR = 5 * READER_RATE
POLL_S = 0.005
ROUND_TIMEOUT_S = 600.0


def log(message: str) -> None:
    print(f"bench.rfid: {message}", file=sys.stderr, flush=True)


# ---- the reader: the emulator in its own process -------------------------------------------


def write_scenario(tmp: Path, reads: int, tags: int = 1000) -> Path:
    """The bundled flood of ``tags`` tags, ending each session after ``reads`` tag reads."""
    path = tmp / "flood.toml"
    path.write_text(
        'name = "flood"\nseed = 5\n\n'
        + "".join(
            f'[[antennas]]\nid = {i}\ngroup = "{"outside" if i <= 2 else "inside"}"\n\n'
            for i in (1, 2, 3, 4)
        )
        + '[[tags]]\nname = "population"\ngtin = "00614141123452"\n'
        "company_prefix_length = 7\nserial_start = 100000\ncount = 1000\n"
        'motion = "shelf"\nnear = "outside"\n\n'
        f"[flood]\ntags = {tags}\ntags_per_report = 100\nreports_per_write = 10\n"
        f"total_reads = {reads}\n",
        encoding="utf-8",
    )
    return path


@contextlib.contextmanager
def emulator(scenario: Path) -> Any:
    """``edgetally sim llrp`` as a child process; yields its port once it listens."""
    port = free_port()
    proc = subprocess.Popen(
        [*EDGETALLY, "sim", "llrp", "--scenario", str(scenario), "--port", str(port)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "listening" not in line:
            raise BenchError(f"the LLRP emulator did not start (it said {line!r})")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def reader_settings(port: int) -> LlrpSettings:
    return LlrpSettings(host="127.0.0.1", port=port, antennas=[1, 2, 3, 4])


# ---- steady-state rate -------------------------------------------------------------------------


@dataclass
class Window:
    """Counts at two instants: once ``warm`` reads are through, and once all but the last
    ``cool`` are. The tail is left out as the head is: what the queues hold when the
    reader stops is stored without waiting for the socket, which is not a rate."""

    warm: int
    cool: int = 0
    total: int | None = None
    t0: float | None = None
    n0: int = 0
    t1: float | None = None
    n1: int = 0
    c0: float = 0.0  # this process's CPU time (every thread) at t0 and t1
    c1: float = 0.0

    def see(self, n: int, now: float) -> None:
        if self.t0 is None and n >= self.warm:
            self.t0, self.n0, self.c0 = now, n, time.process_time()
        if self.total is not None and self.n1 >= self.total - self.cool:
            return
        self.t1, self.n1, self.c1 = now, n, time.process_time()

    @property
    def rate(self) -> float:
        if self.t0 is None or self.t1 is None or self.t1 <= self.t0:
            raise BenchError(f"too few reads to measure ({self.n1}): raise --reads")
        return (self.n1 - self.n0) / (self.t1 - self.t0)

    @property
    def cpu_us(self) -> float:
        """CPU µs per tag read, every thread of this process: what load on the machine
        barely moves, unlike the rate (the reader is in its own process either way)."""
        self.rate  # noqa: B018 (the same check: enough reads)
        return (self.c1 - self.c0) * 1e6 / max(self.n1 - self.n0, 1)


# ---- 1. sllurp's bare decode ------------------------------------------------------------------


async def sllurp_round(port: int, total: int, warm: int) -> tuple[float, float]:
    """sllurp configures the reader and decodes every frame; the tags are counted.

    The emulator takes one client at a time, and the pipeline's connection may
    still be closing: a session it turns down is tried again.
    """
    for _ in range(100):
        try:
            return await _sllurp_session(port, total, warm)
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise
            await asyncio.sleep(0.1)
    raise BenchError("the LLRP emulator turned sllurp's session down 100 times")


async def _sllurp_session(port: int, total: int, warm: int) -> tuple[float, float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    client = LLRPClient(reader_config(reader_settings(port)), transport_tx_write=writer.write)
    window = Window(warm)
    seen = 0
    try:
        async with asyncio.timeout(ROUND_TIMEOUT_S):
            while seen < total:
                header = await reader.readexactly(HEADER_LEN)
                length = frame_length(header)
                frame = header + await reader.readexactly(length - HEADER_LEN)
                msg = LLRPMessage(msgbytes=frame)
                client.handleMessage(msg)
                if msg.msgname == "RO_ACCESS_REPORT":
                    tags = msg.msgdict["RO_ACCESS_REPORT"].get("TagReportData") or []
                    seen += len(tags) if isinstance(tags, list) else 1
                    window.see(seen, time.perf_counter())
        if client.state == LLRPReaderState.STATE_INVENTORYING:
            client.sendMessage({"CLOSE_CONNECTION": {}})
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return window.rate, window.cpu_us


# ---- 2. the pipeline ---------------------------------------------------------------------------


def station_table(kind: str) -> str:
    """The station on the reader: a portal door (antennas 1-2 outside, 3-4 inside) or a
    receiving dock (each tag's first read receives it, re-reads are duplicates)."""
    if kind == "portal":
        return (
            '[[stations]]\nname = "dock-1"\nkind = "portal"\nlocation = "DOCK-1"\n'
            f'devices = ["{DEVICE}"]\noutside_antennas = [1, 2]\ninside_antennas = [3, 4]\n'
        )
    return (
        '[[stations]]\nname = "dock-1"\nkind = "receiving"\nlocation = "DOCK-1"\n'
        f'devices = ["{DEVICE}"]\n'
    )


def write_config(workdir: Path, port: int, station: str, fold: bool = True) -> Path:
    workdir.mkdir()
    token = workdir / "token"
    token.write_text("bench-token", encoding="utf-8")
    token.chmod(0o600)  # the agent refuses a token others can read
    path = workdir / "agent.toml"
    path.write_text(
        f'[agent]\nid = "{AGENT}"\nstate_dir = "{workdir}"\nlog_level = "info"\n\n'
        '[outbox]\npath = "outbox.db"\n\n'
        f'[sync]\nurl = "http://127.0.0.1:{free_port()}/"\ntoken_file = "{token}"\n'
        "backoff_initial_s = 30\nbackoff_cap_s = 60\n\n"
        '[health]\nlisten = ""\n\n'
        f'[[devices]]\nid = "{DEVICE}"\ndriver = "llrp"\nhost = "127.0.0.1"\nport = {port}\n'
        f"antennas = [1, 2, 3, 4]\nfold_repeats = {'true' if fold else 'false'}\n\n"
        + station_table(station),
        encoding="utf-8",
    )
    return path


async def pipeline_round(
    workdir: Path,
    port: int,
    station: str,
    total: int,
    warm: int,
    profile: cProfile.Profile | None = None,
    fold: bool = True,
) -> tuple[float, float, int, int]:
    """The daemon on the flood until ``total`` tag reads are stored;
    (rate, CPU µs per read, movements, rows)."""
    daemon = Daemon(load_config(write_config(workdir, port, station, fold)), "bench-token")
    window = Window(warm, warm, total)
    counters = daemon.counters
    if profile is not None:
        profile.enable()
    task = asyncio.create_task(daemon.run(), name="daemon")
    try:
        async with asyncio.timeout(ROUND_TIMEOUT_S):
            while True:
                await asyncio.sleep(POLL_S)
                if task.done():
                    await task
                    raise BenchError("the daemon stopped before the flood ended")
                n = counters.tag_reads
                window.see(n, time.perf_counter())
                if n >= total:
                    break
    finally:
        if profile is not None:
            profile.disable()
        daemon.stop()
        await asyncio.wait_for(task, 60)
    db = workdir / "outbox.db"
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows, reads, without = conn.execute(
            "SELECT count(*), sum(coalesce(seen_count, 1)), count(*) - count(outcome)"
            " FROM reads WHERE device = ?",
            (DEVICE,),
        ).fetchone()
        movements = conn.execute("SELECT count(*) FROM movements").fetchone()[0]
    if reads != total or without:
        raise BenchError(
            f"the outbox holds {rows} rows for {reads} tag reads ({without} without an "
            f"outcome) of {total} sent"
        )
    return window.rate, window.cpu_us, int(movements), int(rows)


# ---- the run -----------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for dist in ("sllurp", "epcpy", "orjson"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[dist] = importlib.metadata.version(dist)
    return out


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    total = args.reads
    warm = max(1, int(total * args.warmup))
    with (
        open(os.devnull, "w", encoding="utf-8") as sink,
        emulator(write_scenario(tmp, total, args.tags)) as port,
    ):
        logs.setup("info", stream=sink)  # the daemon's JSON logs, formatted and thrown away
        bare: list[float] = []
        pipe: list[float] = []
        bare_cpu: list[float] = []
        pipe_cpu: list[float] = []
        round_ratios: list[float] = []
        unfolded: list[float] = []
        moves: list[int] = []
        rows: list[int] = []
        rows_unfolded: list[int] = []
        sides = ["sllurp", "pipeline", *(["unfolded"] if args.unfolded else [])]
        for r in range(args.rounds):
            order = sides[r % len(sides) :] + sides[: r % len(sides)]
            for side in order:
                if side == "sllurp":
                    rate, cpu = await sllurp_round(port, total, warm)
                    bare.append(rate)
                    bare_cpu.append(cpu)
                    continue
                fold = side == "pipeline"
                rate, cpu, made, stored = await pipeline_round(
                    tmp / f"round-{r}-{side}", port, args.station, total, warm, fold=fold
                )
                (pipe if fold else unfolded).append(rate)
                if fold:
                    pipe_cpu.append(cpu)
                (rows if fold else rows_unfolded).append(stored)
                if fold:
                    moves.append(made)
            round_ratios.append(pipe[-1] / bare[-1])
            log(
                f"round {r + 1}/{args.rounds}: sllurp {bare[-1]:,.0f} reads/s, "
                f"pipeline {pipe[-1]:,.0f} reads/s ({rows[-1]:,} rows), {moves[-1]} movements"
                + (f"; unfolded {unfolded[-1]:,.0f} reads/s" if unfolded else "")
            )
        if args.profile is not None:
            profile = cProfile.Profile()
            await pipeline_round(tmp / "profiled", port, args.station, total, warm, profile)
            log("profiled round: folded")
            profile.dump_stats(args.profile)
            stats = pstats.Stats(profile, stream=sys.stderr)
            stats.sort_stats("tottime").print_stats(25)
            log(f"profile of one pipeline round written to {args.profile}")
        logging.getLogger("edgetally").handlers.clear()
    bare_med, pipe_med = statistics.median(bare), statistics.median(pipe)
    before: dict[str, Any] = {}
    if unfolded:
        unf_med = statistics.median(unfolded)
        before = {
            "pipeline_unfolded_reads_per_s": round(unf_med),
            "ratio_unfolded": round(unf_med / bare_med, 3),
            "rows_per_tag_read_unfolded": round(statistics.median(rows_unfolded) / total, 4),
        }
    return {
        "sllurp_decode_reads_per_s": round(bare_med),
        "pipeline_reads_per_s": round(pipe_med),
        "ratio": round(pipe_med / bare_med, 3),
        "rows_per_tag_read": round(statistics.median(rows) / total, 4),
        "ratio_median_of_rounds": round(statistics.median(round_ratios), 3),
        "sllurp_decode_cpu_us_per_read": round(statistics.median(bare_cpu), 2),
        "pipeline_cpu_us_per_read": round(statistics.median(pipe_cpu), 2),
        "ratio_cpu": round(statistics.median(bare_cpu) / statistics.median(pipe_cpu), 3),
        **before,
        "tags_in_field": args.tags,
        "movements": int(statistics.median(moves)),
        "bars": {
            "ratio_min": RATIO_BAR,
            "pipeline_reads_per_s_min": RATE_BAR,
            "ratio_met": pipe_med / bare_med >= RATIO_BAR,
            "rate_met": pipe_med >= RATE_BAR,
        },
        "per_round": {
            "sllurp_decode_reads_per_s": [round(x) for x in bare],
            "pipeline_reads_per_s": [round(x) for x in pipe],
            "ratio": [round(x, 3) for x in round_ratios],
            "sllurp_decode_cpu_us_per_read": [round(x, 2) for x in bare_cpu],
            "pipeline_cpu_us_per_read": [round(x, 2) for x in pipe_cpu],
            "pipeline_unfolded_reads_per_s": [round(x) for x in unfolded],
            "rows": rows,
            "rows_unfolded": rows_unfolded,
            "movements": moves,
        },
        "rounds": args.rounds,
        "reads_per_round": total,
        "warmup_reads": warm,
        "station": args.station,
        "ledger": "unreachable (closed loopback port): the bar ends at the outbox",
        "outbox": "real file, journal_mode=WAL, synchronous=FULL",
        "machine": {
            "cpu": cpu_model(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "sqlite_version": sqlite3.sqlite_version,
            "versions": versions(),
        },
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.rfid", description=__doc__.split("\n")[0])
    p.add_argument("--reads", type=int, default=100_000, help="tag reads per session")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds of both sides")
    p.add_argument("--warmup", type=float, default=0.1, help="share of reads left out as start-up")
    p.add_argument(
        "--station",
        choices=("portal", "receiving") if "portal" in STATIONS else ("receiving",),
        default="portal" if "portal" in STATIONS else "receiving",
        help="the station on the reader",
    )
    p.add_argument("--tags", type=int, default=20, help="tags in the reader's field")
    p.add_argument(
        "--no-unfolded",
        dest="unfolded",
        action="store_false",
        help="leave out the pipeline with fold_repeats = false",
    )
    p.add_argument("--profile", type=Path, help="run one more pipeline round under cProfile")
    p.add_argument("--dir", type=Path, help="where the temp dir goes (default: the system's)")
    p.add_argument("--quick", action="store_true", help="a short run for the test suite")
    args = p.parse_args(argv)
    if args.quick:
        args.reads, args.rounds = 5_000, 1
    if args.reads < 1000 or args.rounds < 1 or not 0 <= args.warmup < 0.9:
        p.error("--reads >= 1000, --rounds >= 1 and 0 <= --warmup < 0.9")
    if not 1 <= args.tags <= 1000:
        p.error("--tags: 1 to 1000")
    return args


def main(argv: Sequence[str] | None = None, stdout: IO[str] | None = None) -> int:
    args = parse_args(argv)
    return bench_main(
        "rfid",
        f"reads={args.reads:,} rounds={args.rounds}",
        lambda tmp: asyncio.run(run(args, tmp)),
        say=log,
        parent=args.dir,
        stdout=stdout,
    )


if __name__ == "__main__":
    sys.exit(main())
