"""A backlog as a dock makes it: reads and their receive movements, and configs to run them.

Stored through ``Outbox.store_blocking`` exactly as the agent stores its own
reads, so a benchmark can start the agent on a million pending movements in
seconds instead of scanning them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.clock import Clock, Uuid7, utc_iso
from agent.model import ClockStamp, Item, Movement, Read
from agent.outbox import Commit, Outbox
from bench.common import gtin14
from bench.procs import BenchError, log

AGENT = "bench-footprint"
MAX_BYTES = 8 << 30  # the outbox cap for the run: 1M movements need more than the 512 MiB default
PREFILL_BATCH = 5000


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
    extra: str = "",
) -> Path:
    """An agent config: devices are (id, script, repeat), stations (name, location, device ids).

    ``extra`` is TOML appended as it is (the reader's device and station tables).
    """
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
    if extra:
        parts.append(extra)
    path = workdir / "agent.toml"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
