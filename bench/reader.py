"""The footprint run's "1 reader": the LLRP emulator as a real process, and the agent's table for it.

The load is a fixed reader over two shelves of stationary SGTIN-96 tags, each
tag read ``rate_hz`` times a second: ``tags * rate_hz`` reads a second in all
(275 tags at 4 Hz is a fast reader's ~1,100 reads/s). The agent takes it as
an ``llrp`` device on a ``zone`` station (one antenna per shelf): every tag
arrives once (a receive movement), then each re-read is stored and moves
nothing, which is the steady state of a shelf watched for hours.

The emulator is ``edgetally sim llrp`` in its own process, so its tag model
costs the agent no CPU and its memory is not the agent's.
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from agent.outbox import connect
from agent.outbox.rows import uuid7_floor
from bench.procs import EDGETALLY, BenchError, Child, child_env, free_port, stop_quietly

DEVICE = "aisle-1-reader"
STATION = "aisle-1"
SHELVES = (("shelf-A", 1, 10.0, "SHELF-A"), ("shelf-B", 2, 20.0, "SHELF-B"))  # group, antenna, x
GTIN = "00614141123452"


@dataclass(frozen=True)
class Shelf:
    """The reader's load: how many tags, and how often each is read."""

    tags: int = 275
    rate_hz: float = 4.0

    @property
    def offered_per_s(self) -> float:
        """Read attempts a second; at -50 dBm against -70 dBm sensitivity nearly all succeed."""
        return self.tags * self.rate_hz


def write_scenario(path: Path, shelf: Shelf) -> Path:
    """Two shelves 10 m apart (no cross-reads), the tags split between them, there for good."""
    counts = (shelf.tags - shelf.tags // 2, shelf.tags // 2)
    parts = [
        'name = "footprint-shelf"\nseed = 8\nspeed = 1.0\n'
        f"rate = {shelf.rate_hz!r}\nsensitivity_dbm = -70\ndoor_db = 0\n"
        "report_interval_s = 0.25\n"
    ]
    for group, antenna, x, _ in SHELVES:
        parts.append(f'[[antennas]]\nid = {antenna}\ngroup = "{group}"\nx = {x}\n')
    serial = 1_000_000
    for (group, _, _, _), count in zip(SHELVES, counts, strict=True):
        if count == 0:
            continue
        parts.append(
            f'[[tags]]\nname = "{group}-stock"\ngtin = "{GTIN}"\ncompany_prefix_length = 7\n'
            f'serial_start = {serial}\ncount = {count}\nmotion = "shelf"\nnear = "{group}"\n'
            "spread_m = 1.0\nlateral_m = 0.8\nrssi_peak_dbm = -50\n"
        )
        serial += count
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def reader_toml(port: int) -> str:
    """The agent's ``[[devices]]`` and ``[[stations]]`` tables for the emulated reader."""
    locations = [f"{antenna}={location}" for _, antenna, _, location in SHELVES]
    antennas = [antenna for _, antenna, _, _ in SHELVES]
    return (
        f'[[devices]]\nid = "{DEVICE}"\ndriver = "llrp"\nhost = "127.0.0.1"\nport = {port}\n'
        f"antennas = {antennas}\n\n"
        f'[[stations]]\nname = "{STATION}"\nkind = "zone"\ndevices = ["{DEVICE}"]\n'
        f"antenna_locations = {json.dumps(locations)}\n"
    )


def start_emulator(
    stack: contextlib.ExitStack, workdir: Path, shelf: Shelf, timeout: float = 60.0
) -> int:
    """Start ``edgetally sim llrp`` on a free port; its port once it says it listens."""
    scenario = write_scenario(workdir / "shelf.toml", shelf)
    port = free_port()
    argv = [*EDGETALLY, "sim", "llrp", "--scenario", str(scenario), "--port", str(port)]
    emu = Child("llrp-emulator", argv, workdir, child_env())
    # Ctrl+C, as a person stops it (SIGTERM stops it as cleanly: exit 0 either way).
    stack.callback(stop_quietly, emu, signal.SIGINT)
    deadline = time.monotonic() + timeout
    while not any("listening" in line for line in emu.tail):
        if not emu.alive():
            raise emu.died("starting")
        if time.monotonic() > deadline:
            raise BenchError(f"the LLRP emulator did not listen within {timeout:.0f}s")
        time.sleep(0.01)
    return port


def reads_by_device(outbox: Path, since: float) -> dict[str, int]:
    """Reads stored since wall time ``since``, per device (read ids are UUIDv7: a key range)."""
    conn = connect(outbox, readonly=True)
    try:
        rows = conn.execute(
            "SELECT device, count(*) FROM reads WHERE id >= ? GROUP BY device",
            (uuid7_floor(since),),
        ).fetchall()
    finally:
        conn.close()
    return {str(device): int(n) for device, n in rows}


def wait_first_tag(outbox: Path, since: float, alive: Child, timeout: float) -> float:
    """Seconds until the reader's first tag read is in the outbox: it connects after READY."""
    t0 = time.monotonic()
    while True:
        conn = connect(outbox, readonly=True)
        try:
            row = conn.execute(
                "SELECT 1 FROM reads WHERE id >= ? AND device = ? LIMIT 1",
                (uuid7_floor(since), DEVICE),
            ).fetchone()
        finally:
            conn.close()
        if row is not None:
            return time.monotonic() - t0
        if not alive.alive():
            raise alive.died("waiting for the reader's first tag")
        if time.monotonic() - t0 > timeout:
            raise BenchError(f"no tag read from {DEVICE} reached the outbox within {timeout:.0f}s")
        time.sleep(0.05)
