"""Time and identity for records made on the device.

A Raspberry Pi has no real-time clock: after a power cut without network its
wall clock can be far off, or jump backwards when NTP syncs. Every record
therefore carries the wall time, whether the clock was synchronised, the boot
id and the monotonic time, and ids and sequence numbers never depend on the
wall clock going forwards.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

_BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
# This process's id, kept current across fork: os.getpid() is a system call, and
# Uuid7 asks on every id whether it still owns its buffer of random bytes.
_PID = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _PID.__setitem__(0, os.getpid()))
_TIME_ERROR = 5  # adjtimex(2): clock not synchronised


def read_boot_id(path: Path = _BOOT_ID_PATH) -> str:
    """The kernel's boot id; a fresh random one where the kernel has none (not Linux)."""
    try:
        return path.read_text().strip()
    except OSError:
        return str(uuid.uuid4())


def kernel_clock_synced_probe() -> Callable[[], bool]:
    """A function asking the kernel through adjtimex(2) whether NTP disciplines the clock.

    Read-only (modes = 0). Python has no binding for adjtimex, and spawning
    `timedatectl` per check would be absurd, hence ctypes; libc is looked up
    once here (``find_library`` runs ldconfig), not at every check.
    """
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return lambda: False
    adjtimex = ctypes.CDLL(libc_name, use_errno=True).adjtimex

    def synced() -> bool:
        buf = ctypes.create_string_buffer(512)  # larger than struct timex on every ABI
        state = adjtimex(buf)
        return bool(state >= 0 and state != _TIME_ERROR)

    return synced


class Clock:
    """The agent's clock: wall time, monotonic time, boot id, sync state.

    Injected everywhere a time is read, so tests can drive it and so no module
    reaches for a global.
    """

    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        mono_ns: Callable[[], int] = time.monotonic_ns,
        boot_id: str | None = None,
        synced: Callable[[], bool] | None = None,
        synced_ttl_s: float = 30.0,
    ) -> None:
        self._wall = wall
        self._mono_ns = mono_ns
        self.boot_id = boot_id if boot_id is not None else read_boot_id()
        self._synced = synced if synced is not None else kernel_clock_synced_probe()
        self._synced_ttl_ns = int(synced_ttl_s * 1e9)
        self._synced_at: int | None = None
        self._synced_value = False

    def wall(self) -> float:
        return self._wall()

    def mono_ns(self) -> int:
        return self._mono_ns()

    def now_utc(self) -> datetime:
        return datetime.fromtimestamp(self._wall(), UTC)

    def synced(self) -> bool:
        """Whether the wall clock is synchronised, asked of the kernel at most every ttl."""
        now = self._mono_ns()
        if self._synced_at is None or now - self._synced_at >= self._synced_ttl_ns:
            self._synced_value = self._synced()
            self._synced_at = now
        return self._synced_value


class Uuid7:
    """UUIDv7 ids (RFC 9562) that stay strictly increasing if the wall clock goes back.

    The 48-bit millisecond timestamp and 12-bit ``rand_a`` are treated as one
    60-bit counter that never goes below its last value (RFC 9562 §6.2,
    method 3 with a monotonic floor). Not the `uuid6` package: it keeps its
    last timestamp in module globals, and we want one generator per agent with
    an injected clock.

    Random bits come from ``os.urandom`` a few KiB at a time rather than one
    syscall per id (an RFID reader asks for thousands of ids a second); the
    buffer is dropped in a forked child, so two processes never share it.
    """

    _POOL = 4096  # ids' worth of random bytes read at once

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self._last = 0
        self._rand = b""
        self._pos = 0
        self._pid = 0

    def __call__(self) -> uuid.UUID:
        return uuid.UUID(self.new())

    def new(self) -> str:
        # Formatted by hand: uuid.UUID() and its str() cost more than the id itself.
        pos = self._pos
        if pos >= len(self._rand) or self._pid != _PID[0]:
            self._rand = os.urandom(10 * self._POOL)  # 11 bits for rand_a, 62 for rand_b each
            self._pid = _PID[0]
            pos = 0
        self._pos = pos + 10
        r = int.from_bytes(self._rand[pos : pos + 10])
        value = ((int(self._wall() * 1000) & 0xFFFFFFFFFFFF) << 12) | (r >> 69)
        if value <= self._last:
            value = self._last + 1
        self._last = value
        ts = value >> 12
        low = (0b10 << 62) | (r & 0x3FFFFFFFFFFFFFFF)  # variant, rand_b
        return "%08x-%04x-7%03x-%04x-%012x" % (  # noqa: UP031 (faster than an f-string here)
            ts >> 16,
            ts & 0xFFFF,
            value & 0xFFF,
            low >> 48,
            low & 0xFFFFFFFFFFFF,
        )

    def batch(self) -> Callable[[], str]:
        """``new`` for ids made together (the tags of one RFID report), ~5x cheaper.

        The wall clock is read once for the batch and the 60-bit counter counts
        up from there, as ``new`` does within one millisecond; the 62-bit random
        tail (rand_b) is drawn once for the batch. Each id is still unique (the
        counter never repeats in a generator) and as unlikely to meet another
        agent's (it needs the same millisecond, counter and 62 random bits).
        Ids stay strictly increasing across ``new`` and every batch, and are the
        same version 7 form.
        """
        wall_ms = int(self._wall() * 1000) & 0xFFFFFFFFFFFF
        pos = self._pos
        if pos + 10 > len(self._rand) or self._pid != _PID[0]:
            self._rand = os.urandom(10 * self._POOL)
            self._pid = _PID[0]
            pos = 0
        self._pos = pos + 10
        r = int.from_bytes(self._rand[pos : pos + 10])
        self._last = max(((wall_ms << 12) | (r >> 69)) - 1, self._last)
        low = (0b10 << 62) | (r & 0x3FFFFFFFFFFFFFFF)  # variant, rand_b
        tail = "-%04x-%012x" % (low >> 48, low & 0xFFFFFFFFFFFF)  # noqa: UP031
        prefix, prefix_ts = "", -1  # the id's text up to rand_a, and the ms it is for

        def new() -> str:
            nonlocal prefix, prefix_ts
            value = self._last = self._last + 1
            if value >> 12 != prefix_ts:
                prefix_ts = value >> 12
                prefix = "%08x-%04x-7" % (prefix_ts >> 16, prefix_ts & 0xFFFF)  # noqa: UP031
            return prefix + _HEX3[value & 0xFFF] + tail

        return new


_HEX3 = [f"{i:03x}" for i in range(4096)]  # rand_a's 12 bits as text, looked up


def utc_iso(ts: float) -> str:
    """RFC 3339 UTC with microseconds and a Z, the form every record uses."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
