"""The daemon's footprint against its bars (DESIGN §8): memory, start-up, scan to ledger.

    python -m bench.footprint [--pending 1000000] [--load-s 60] [--scans 400] [--quick]

Prints one JSON object on stdout; progress goes to stderr. The agent always
runs as a real process (``python -m agent.cli run --config ...``), and every
file lives in one temp dir that is removed at the end.

1. Backlog: the agent's outbox is filled with ``--pending`` receive movements
   (each with its read, as a dock scanner makes them) through
   ``Outbox.store_blocking`` in big batches, before the agent starts.
2. Start-up: the agent starts on that outbox with the ledger down (its URL is
   a closed loopback port) and ``--scanners`` simulated scanners, each a
   repeating script of GS1 scans, together ``--reads-per-s``. ``startup_s``
   runs from spawn to READY: ``READY=1`` on the ``$NOTIFY_SOCKET`` datagram
   socket we bind and pass in, or, for a daemon that does not send it, the
   ``"event": "ready"`` log line on its stdout (``startup_method`` says which).
3. Memory: the child's VmRSS (/proc/<pid>/status) once a second for
   ``--load-s`` while the scanners scan and the backlog stays undelivered.
   ``rss_mb`` is the last sample; ``pending`` is the outbox's count at the end.
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
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import httpx

from agent.clock import Clock, Uuid7, utc_iso
from agent.model import ClockStamp, Item, Movement, Read
from agent.outbox import Commit, Outbox, connect
from agent.outbox.rows import uuid7_floor
from agent.status import outbox_status
from bench.common import cpu_model, gtin14, pct
from ledger import LedgerStore

ROOT = Path(__file__).resolve().parents[1]
AGENT = "bench-footprint"
MAX_BYTES = 8 << 30  # the outbox cap for the run: 1M movements need more than the 512 MiB default
PREFILL_BATCH = 5000
RSS_BAR_MB = 60.0
P99_BAR_MS = 50.0
READY_GRACE_S = 1.0  # after the log line, how long READY=1 may still arrive
STOP_TIMEOUT_S = 30.0
EDGETALLY = [sys.executable, "-m", "agent.cli"]
SIZES = {"pending": (1_000_000, 20_000), "load_s": (60, 5), "scans": (400, 50)}  # full, --quick


class BenchError(RuntimeError):
    """The benchmark could not run as intended; the message says why."""


def log(message: str) -> None:
    print(f"bench.footprint: {message}", file=sys.stderr, flush=True)


# ---- workload ----------------------------------------------------------------------------


def gs1_scan(i: int) -> str:
    """A GS1-128 receiving label: GTIN, lot, then (after a GS) a serial."""
    return f"01{gtin14(f'095060002{i % 5000:04d}')}10L{i // 97:05d}\x1d21{i:08d}"


class Backlog:
    """Reads from the config's scanners, each with the ``receive`` movement its station makes."""

    def __init__(self, stations: Sequence[tuple[str, str, Sequence[str]]]) -> None:
        self.clock = Clock(synced=lambda: True)
        self.ids = Uuid7()
        # (station, location, device) in turn, as the config binds them
        self.sources = [(name, loc, dev) for name, loc, devs in stations for dev in devs]

    def commit(self, i: int) -> Commit:
        station, location, device = self.sources[i % len(self.sources)]
        data = gs1_scan(i).encode()
        gtin, lot, serial = data[2:16].decode(), f"L{i // 97:05d}", f"{i:08d}"
        read = Read(
            id=self.ids.new(),
            device=device,
            kind="barcode",
            data=data,
            observed_at=utc_iso(self.clock.wall()),
            mono_ns=self.clock.mono_ns(),
            boot_id=self.clock.boot_id,
        )
        movement = Movement(
            id=self.ids.new(),
            agent=AGENT,
            kind="receive",
            item=Item(gtin=gtin, lot=lot, serial=serial),
            qty=1,
            to=location,
            station=station,
            device=device,
            observed_at=utc_iso(self.clock.wall()),
            clock=ClockStamp(synced=True, boot_id=self.clock.boot_id, mono_ns=read.mono_ns),
            evidence={"read_ids": [read.id], "raw": data.decode("utf-8", "backslashreplace")},
        )
        return Commit(read, [movement], {}, "good")

    def commits(self, start: int, n: int) -> list[Commit]:
        return [self.commit(i) for i in range(start, start + n)]


def prefill(
    path: Path, stations: Sequence[tuple[str, str, Sequence[str]]], n: int
) -> dict[str, Any]:
    """Phase 1: ``n`` pending movements in the outbox, stored as the agent would store them."""
    backlog = Backlog(stations)
    t0 = time.perf_counter()
    box = Outbox.open(path, AGENT, MAX_BYTES)
    try:
        done, step = 0, max(1, n // 10)
        while done < n:
            k = min(PREFILL_BATCH, n - done)
            refused = [s.error for s in box.store_blocking(backlog.commits(done, k)) if s.error]
            if refused:
                raise BenchError(f"prefill: {len(refused)} reads refused: {refused[0]}")
            before, done = done, done + k
            if done // step != before // step or done == n:
                rate = done / (time.perf_counter() - t0)
                log(f"prefill {done:,}/{n:,} movements ({rate:,.0f}/s)")
        stats = box.stats()
    finally:
        box.close()
    seconds = time.perf_counter() - t0
    if stats.pending != n:
        raise BenchError(f"prefill: the outbox holds {stats.pending} pending, expected {n}")
    return {
        "movements": n,
        "seconds": round(seconds, 1),
        "per_s": round(n / seconds, 1),
        "outbox_file_bytes": file_bytes(path),
        "outbox_used_bytes": stats.used_bytes,
    }


def file_bytes(path: Path) -> int:
    """The database file with its WAL, as it sits on disk."""
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def write_script(path: Path, lines: Sequence[tuple[str, float]]) -> Path:
    """A simulated scanner's JSON-lines script of (data, delay before it)."""
    text = "".join(json.dumps({"data": data, "delay": delay}) + "\n" for data, delay in lines)
    path.write_text(text, encoding="utf-8")
    return path


def toml_str(value: object) -> str:
    return json.dumps(str(value))  # a JSON string is a TOML basic string for these paths


def write_config(
    workdir: Path,
    url: str,
    token_file: Path,
    devices: Sequence[tuple[str, Path, bool]],
    stations: Sequence[tuple[str, str, Sequence[str]]],
) -> Path:
    """An agent config: devices are (id, script, repeat), stations (name, location, device ids)."""
    parts = [
        f'[agent]\nid = {toml_str(AGENT)}\nstate_dir = {toml_str(workdir)}\nlog_level = "info"\n',
        f'[outbox]\npath = "outbox.db"\nmax_bytes = {MAX_BYTES}\n',
        f"[sync]\nurl = {toml_str(url)}\ntoken_file = {toml_str(token_file)}\ntimeout_s = 5\n",
        # the endpoint on, as in production, on a free port: runs side by side never collide
        '[health]\nlisten = "127.0.0.1:0"\n',
    ]
    for dev_id, script, repeat in devices:
        parts.append(
            f'[[devices]]\nid = {toml_str(dev_id)}\ndriver = "simulated"\n'
            f"script = {toml_str(script)}\nrepeat = {str(repeat).lower()}\n"
        )
    for name, location, devs in stations:
        parts.append(
            f'[[stations]]\nname = {toml_str(name)}\nkind = "receiving"\n'
            f"location = {toml_str(location)}\ndevices = {json.dumps(list(devs))}\n"
        )
    path = workdir / "agent.toml"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def free_port() -> int:
    """A loopback port nobody listens on (just closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- processes ---------------------------------------------------------------------------


class NotifyListener:
    """A systemd-style ``$NOTIFY_SOCKET``: an AF_UNIX datagram socket, drained by a thread.

    Drained for the child's whole life, so a daemon that also sends STATUS= or
    WATCHDOG=1 never blocks on a full socket buffer.
    """

    def __init__(self, path: Path) -> None:
        self.path: Path | None = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if len(os.fsencode(path)) < 108:  # sun_path's size on Linux, with its NUL
            self.sock.bind(str(path))
            self.address = str(path)
        else:  # a deep temp dir (pytest's): the abstract namespace, which leaves no file
            self.path = None
            name = f"edgetally-footprint-{os.getpid()}-{path.stem}-{secrets.token_hex(4)}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        self.sock.settimeout(0.1)
        self.ready_at: float | None = None
        self.messages: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            now = time.monotonic()
            for line in data.decode("utf-8", "replace").splitlines():
                key, _, value = line.partition("=")
                self.messages[key] += 1
                if key == "READY" and value == "1" and self.ready_at is None:
                    self.ready_at = now

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()


class Child:
    """A process we started: stdout read line by line by a thread into a log file, stopped by us."""

    def __init__(self, name: str, argv: list[str], workdir: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self._err = (workdir / f"{name}.stderr").open("wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._err,
        )
        self.events: Counter[str] = Counter()
        self.event_at: dict[str, float] = {}
        self.tail: deque[str] = deque(maxlen=20)
        self._reader = threading.Thread(target=self._read, name=f"{name}-stdout", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.log_path.open("wb") as out:
            for raw in self.proc.stdout:
                now = time.monotonic()
                out.write(raw)
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.tail.append(line)
                try:
                    name = json.loads(line).get("event")
                except (ValueError, AttributeError):
                    continue
                if isinstance(name, str):
                    self.events[name] += 1
                    self.event_at.setdefault(name, now)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr_tail(self, lines: int = 15) -> str:
        if not self._err.closed:
            self._err.flush()
        text = Path(self._err.name).read_text(encoding="utf-8", errors="replace")
        return "\n".join([*self.tail, *text.splitlines()[-lines:]])

    def died(self, doing: str) -> BenchError:
        return BenchError(
            f"{self.name} exited with {self.proc.returncode} while {doing}; its output ends:\n"
            + self.stderr_tail()
        )

    def close(self) -> None:
        """After it has exited: let the reader finish and close our end of its stderr."""
        self._reader.join(5)
        self._err.close()

    def stop(self) -> float:
        """SIGTERM, then wait; a child that does not stop in time is killed and that is an error."""
        t0 = time.monotonic()
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise BenchError(
                    f"{self.name} did not stop within {STOP_TIMEOUT_S:.0f}s of SIGTERM; killed"
                ) from None
        seconds = time.monotonic() - t0
        self.close()
        if self.proc.returncode != 0:
            raise BenchError(
                f"{self.name} stopped with exit code {self.proc.returncode}; its output ends:\n"
                + self.stderr_tail()
            )
        return seconds


def child_env(
    notify: NotifyListener | None = None, extra: dict[str, str] | None = None
) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(extra or {})}
    env.pop("NOTIFY_SOCKET", None)  # never the socket of whatever runs this benchmark
    if notify is not None:
        env["NOTIFY_SOCKET"] = notify.address
    return env


def start_agent(
    stack: contextlib.ExitStack, name: str, config: Path, workdir: Path, env: dict[str, str]
) -> tuple[Child, NotifyListener]:
    notify = NotifyListener(workdir.parent / f"{name}.sock")  # short: sun_path is 108 bytes
    stack.callback(notify.close)
    argv = [*EDGETALLY, "run", "--config", str(config)]
    agent = Child(name, argv, workdir, child_env(notify, env))
    stack.callback(stop_quietly, agent)
    return agent, notify


def stop_quietly(child: Child) -> None:
    """For clean-up after a failure: stop it, and say (not raise) if that went wrong."""
    if not child.alive():
        child.close()
        return
    try:
        child.stop()
    except BenchError as exc:
        log(f"while cleaning up: {exc}")


def wait_ready(
    agent: Child, notify: NotifyListener, timeout: float
) -> tuple[float, str, float | None]:
    """Seconds from spawn to READY, which signal said so, and seconds to the log line."""
    deadline = time.monotonic() + timeout
    while True:
        now = time.monotonic()
        logged = agent.event_at.get("ready")
        if notify.ready_at is not None:
            logged_s = (logged - agent.started) if logged is not None else None
            return notify.ready_at - agent.started, "sd_notify", logged_s
        if logged is not None and now - logged >= READY_GRACE_S:
            return logged - agent.started, "log_line", logged - agent.started
        if not agent.alive():
            raise agent.died("starting")
        if now > deadline:
            raise BenchError(f"{agent.name} was not ready within {timeout:g}s")
        time.sleep(0.005)


def read_proc_status(pid: int) -> dict[str, int]:
    """The kB (and count) fields of /proc/<pid>/status we report."""
    out = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError as exc:
        raise BenchError(f"cannot read /proc/{pid}/status: {exc.strerror}") from exc
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem", "Threads"):
            out[key] = int(value.split()[0])
    return out


def mb(kb: int) -> float:
    return round(kb / 1024, 2)


# ---- phases 2 and 3: start-up and memory with the backlog --------------------------------


def outbox_mark(path: Path, since: float) -> tuple[int, int]:
    """(highest seq, reads stamped since wall time ``since``): primary-key lookups only.

    Read ids are UUIDv7, so the reads made since a time are a range of the key.
    """
    conn = connect(path, readonly=True)
    try:
        seq = conn.execute("SELECT coalesce(max(seq), 0) FROM movements").fetchone()[0]
        reads = conn.execute(
            "SELECT count(*) FROM reads WHERE id >= ?", (uuid7_floor(since),)
        ).fetchone()[0]
    finally:
        conn.close()
    return int(seq), int(reads)


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
    down = f"http://127.0.0.1:{free_port()}"  # nobody listens: the ledger is down
    config = write_config(work, down, token, devices, stations)

    log(f"phase 2: start-up with {args.scanners} scanners, ledger down at {down}")
    with contextlib.ExitStack() as stack:
        agent, notify = start_agent(stack, "agent-backlog", config, work, args.agent_env)
        startup_s, method, logged_s = wait_ready(agent, notify, args.startup_timeout)
        log(f"ready after {startup_s:.2f}s ({method})")
        at_ready = read_proc_status(agent.pid)

        log(f"phase 3: RSS once a second for {args.load_s}s of scanning")
        wall0 = time.time()
        seq0, reads0 = outbox_mark(work / "outbox.db", wall0)
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
        seq1, reads1 = outbox_mark(work / "outbox.db", wall0)
        elapsed = time.monotonic() - t0
        status = outbox_status(work / "outbox.db", MAX_BYTES)
        stop_s = agent.stop()
    pending = status["outbox"]["pending"]
    if pending < args.pending:
        raise BenchError(
            f"the outbox holds {pending} pending, fewer than the {args.pending} put in"
        )
    return {
        "rss_mb": samples[-1],
        "rss_max_mb": max(samples),
        "pending": pending,
        "startup_s": round(startup_s, 3),
        "startup_method": method,
        "startup_log_line_s": None if logged_s is None else round(logged_s, 3),
        "prefill": filled,
        "load": {
            "seconds": round(elapsed, 2),
            "scanners": args.scanners,
            "stations": len(stations),
            "reads": reads1 - reads0,
            "reads_per_s": round((reads1 - reads0) / elapsed, 2),
            "movements_per_s": round((seq1 - seq0) / elapsed, 2),
            "rss_at_ready_mb": mb(at_ready["VmRSS"]),
            "rss_samples_mb": samples,
            "vm_hwm_mb": mb(last["VmHWM"]),
            "rss_anon_mb": mb(last["RssAnon"]),
            "rss_file_mb": mb(last["RssFile"]),
            "rss_shmem_mb": mb(last["RssShmem"]),
            "threads": last["Threads"],
            "agent_events": dict(agent.events),
            "notify_messages": dict(notify.messages),
            "notify_socket": "path" if notify.path is not None else "abstract",
            "outbox_file_bytes": file_bytes(work / "outbox.db"),
            "stop_s": round(stop_s, 3),
        },
    }


# ---- phase 4: scan to ledger -------------------------------------------------------------


def wait_healthy(ledger: Child, url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not ledger.alive():
            raise ledger.died("starting")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise BenchError(f"the ledger at {url} was not healthy within {timeout:.0f}s")


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
    for name in ("pending", "load_s", "scanners", "scans"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("reads_per_s", "scan_interval_ms", "startup_timeout"):
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


@contextlib.contextmanager
def terminated_as_error() -> Iterator[None]:
    """SIGTERM to the benchmark unwinds like Ctrl+C, so children are stopped and files removed."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous: Callable[..., Any] | int | None = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None, stdout: IO[str] | None = None) -> int:
    args = parse_args(argv)
    with (
        terminated_as_error(),
        tempfile.TemporaryDirectory(prefix="edgetally-footprint-", dir=args.dir) as tmp,
    ):
        log(
            f"pending={args.pending:,} load_s={args.load_s} scanners={args.scanners} "
            f"scans={args.scans} in {tmp}"
        )
        try:
            result = run(args, Path(tmp))
        except (BenchError, OSError) as exc:
            log(f"failed: {exc}")
            return 1
        except KeyboardInterrupt:
            log("interrupted")
            return 130
    print(json.dumps(result, indent=2), file=stdout or sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
