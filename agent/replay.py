"""Recorded reads: the daemon's ``[record]`` file, and ``edgetally replay`` over it.

A recording is JSON lines of ``Read.to_dict()``; a simulator script (the
``config/scripts/*.jsonl`` the example configs play) is taken too, its reads
timed by its delays. Replay runs each read through
identify and the rules of a config with fresh, in-memory state: no outbox, no
network. The clock comes from the reads themselves (``observed_at``,
``mono_ns``, ``boot_id``), so debounce and movement times come out as they did
live; only ids differ. With nothing delivered, a CANCEL always cancels.

RFID stations also decide by time: before each read the rules tick at that
read's own time, and at the end of the file every pass still open is closed,
so a portal's movements come out as they did live (``ReplayedTick`` rows,
which have no read).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from agent.alarms import Alarms
from agent.clock import Clock, Uuid7, utc_iso
from agent.config import Config
from agent.errors import DriverError, EdgeTallyError
from agent.logs import event
from agent.model import Movement, Read
from agent.rules import Context, Rules, Ruling, Tick, identify_for

log = logging.getLogger("edgetally.record")
TICK_NS = 100_000_000  # as often as the daemon ticks (what time decides needs no more)


class ReplayError(EdgeTallyError):
    """A recording line that is not a read; the message names the file and line."""


class Recorder:
    """Appends every read to ``path`` as one JSON line, before it is decided.

    Line-buffered, so each read reaches the kernel at once (a line write is a
    page-cache copy: done on the loop, not worth a thread). At ``max_bytes``
    the file is rotated to ``<path>.1``, so the disk use stays under twice the
    cap. A write error raises the ``record_failed`` alarm and stops recording;
    the reads themselves go on.
    """

    def __init__(self, path: Path | None, max_bytes: int, alarms: Alarms | None = None) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.alarms = alarms
        self._file: IO[str] | None = None
        self._size = 0
        self._failed = False

    def write(self, read: Read) -> None:
        if self.path is None or self._failed:
            return
        line = read.to_json() + "\n"
        try:
            if self._file is None:
                self._open()
            if self._size and self._size + len(line) > self.max_bytes:
                self._rotate()
            assert self._file is not None
            self._file.write(line)
            self._size += len(line.encode("utf-8"))
        except OSError as exc:
            self._failed = True
            self.close()
            message = f"recording reads to {self.path} stopped: {exc}"
            if self.alarms is not None:
                self.alarms.raise_("record_failed", message)
            else:
                event(log, "record_failed", level=logging.ERROR, error=message)

    def _open(self) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        self._size = self._file.tell()

    def _rotate(self) -> None:
        assert self.path is not None
        self.close()
        os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        event(log, "record_rotated", path=str(self.path))
        self._open()

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None


class _ReadClock:
    """Wall and monotonic time of the read being replayed."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.mono = 0

    def at(self, read: Read) -> None:
        with contextlib.suppress(ValueError):
            self.wall = datetime.fromisoformat(read.observed_at).timestamp()
        self.mono = read.mono_ns


@dataclass(frozen=True, slots=True)
class Replayed:
    line: int
    read: Read
    ruling: Ruling

    def to_dict(self) -> dict[str, Any]:
        d = self.ruling.decision
        cancel = [
            {"movement": t.movement_id, "result": "cancelled before delivery"} for t in d.cancel
        ]
        return {
            "line": self.line,
            "read_id": self.read.id,
            "device": self.read.device,
            "data": self.read.data.decode("utf-8", "backslashreplace"),
            "station": self.ruling.station,
            "identity": self.ruling.identity.kind,
            "feedback": d.feedback,
            "reason": d.reason,
            "double": self.ruling.double,
            "movements": [m.to_dict() for m in d.movements],
            "cancel": cancel,
        }


@dataclass(frozen=True, slots=True)
class ReplayedTick:
    """A decision time made (a portal pass gone quiet), after recording line ``line``."""

    line: int
    tick: Tick

    def to_dict(self) -> dict[str, Any]:
        d = self.tick.decision
        return {
            "line": self.line,
            "read_id": None,
            "device": self.tick.device,
            "station": self.tick.station,
            "tick": True,
            "feedback": d.feedback,
            "reason": d.reason,
            "movements": [m.to_dict() for m in d.movements],
        }


def parse_reads(lines: Iterable[str], name: str) -> Iterator[tuple[int, Read]]:
    for number, text in enumerate(lines, start=1):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        try:
            yield number, Read.from_json(text)
        except ValueError as exc:
            raise ReplayError(f"{name}:{number}: not a recorded read: {exc}") from exc


SCRIPT_START = datetime(2026, 1, 1, tzinfo=UTC)  # a script's reads start here, by its delays


def is_script(lines: list[str]) -> bool:
    """A simulator script (``{"data": ..., "delay": ...}``) rather than a recording:
    its first line has data but no read id."""
    for text in lines:
        if text.strip() and not text.lstrip().startswith("#"):
            try:
                first = json.loads(text)
            except ValueError:
                return False
            return (
                isinstance(first, dict)
                and "id" not in first
                and ("data" in first or "data_hex" in first)
            )
    return False


def script_reads(config: Config, lines: list[str], name: str) -> Iterator[tuple[int, Read]]:
    """A simulator script's lines as the reads the simulated scanner would make, timed by
    their delays from SCRIPT_START. A line without ``device`` is the config's simulated
    device that plays this script (or its only device)."""
    from drivers.simulated import SimulatedSettings, parse_script

    try:
        script = parse_script("\n".join(lines), name)
    except DriverError as exc:
        raise ReplayError(str(exc)) from exc
    numbers = [n for n, t in enumerate(lines, 1) if t.strip() and not t.lstrip().startswith("#")]
    default = _script_device(config, Path(name))
    mono = 0
    ids = Uuid7(lambda: SCRIPT_START.timestamp() + mono / 1e9)
    for number, line in zip(numbers, script, strict=True):
        mono += int(line.delay * 1e9)
        device = line.device or default
        if device is None:
            devices = [d.id for d in config.devices if isinstance(d.options, SimulatedSettings)]
            raise ReplayError(
                f'{name}:{number}: which device read this? Add "device" to the line, or '
                f"replay with the config whose simulated device plays {name} "
                f"(this one has {', '.join(devices) or 'no simulated device'})"
            )
        at = SCRIPT_START + timedelta(microseconds=mono // 1000)
        yield (
            number,
            Read(
                id=ids.new(),
                device=device,
                kind="barcode",
                data=line.data,
                observed_at=utc_iso(at.timestamp()),
                mono_ns=mono,
                boot_id="script",
            ),
        )


def _script_device(config: Config, script: Path) -> str | None:
    from drivers.simulated import SimulatedSettings

    sims = [d for d in config.devices if isinstance(d.options, SimulatedSettings)]
    for d in sims:
        if d.options.script.resolve() == script.resolve():
            return d.id
    return sims[0].id if len(sims) == 1 else None


def replay(config: Config, lines: Iterable[str], name: str) -> Iterator[Replayed | ReplayedTick]:
    """Each read of a recording (or of a simulator script) decided by ``config``'s rules,
    in order, with the decisions time made between them."""
    lines = list(lines)
    reads = script_reads(config, lines, name) if is_script(lines) else parse_reads(lines, name)
    now = _ReadClock()
    clock = Clock(
        wall=lambda: now.wall, mono_ns=lambda: now.mono, boot_id="replay", synced=lambda: False
    )
    rules = Rules(
        config.stations,
        Context(config.agent.id, clock, Uuid7(clock.wall)),
        identify=identify_for(config),
    )
    ticking = rules.ticking
    number = ticked = 0
    last: Read | None = None
    for number, read in reads:
        now.at(read)
        if ticking and (
            last is None or last.boot_id != read.boot_id or read.mono_ns - ticked >= TICK_NS
        ):
            ticked = read.mono_ns
            for tick in rules.tick(read.mono_ns, read.boot_id):
                if tick.decision.movements or tick.decision.log:
                    yield ReplayedTick(number, tick)
        yield Replayed(number, read, rules.decide(read.device, read))
        last = read
    if ticking and last is not None:
        for tick in rules.tick(last.mono_ns, last.boot_id, final=True):
            if tick.decision.movements or tick.decision.log:
                yield ReplayedTick(number, tick)


def table(results: Iterable[Replayed | ReplayedTick]) -> Any:
    """A rich table of a replay, one row per read."""
    from rich.table import Table

    out = Table("line", "device", "data", "station", "result", "movements")
    for r in results:
        if isinstance(r, ReplayedTick):
            d = r.tick.decision
            out.add_row(
                str(r.line),
                r.tick.device,
                "(time)",
                r.tick.station,
                d.reason or d.feedback,
                "\n".join(_move_text(m) for m in d.movements),
            )
            continue
        d = r.ruling.decision
        result: str = "double read" if r.ruling.double else d.feedback
        if d.reason and not r.ruling.double:
            result += f": {d.reason}"
        moves = [
            _move_text(m) + (f" {','.join(f'{k}={v}' for k, v in m.ref.items())}" if m.ref else "")
            for m in d.movements
        ]
        moves += [f"cancel {t.movement_id}" for t in d.cancel]
        out.add_row(
            str(r.line),
            r.read.device,
            r.read.data.decode("utf-8", "backslashreplace"),
            r.ruling.station or "-",
            result,
            "\n".join(moves),
        )
    return out


def _move_text(m: Movement) -> str:
    what = m.item.key() or "(all else: 0)"  # a count_close names no item
    return f"{m.kind} {m.qty} {what} {m.from_ or '-'}→{m.to or '-'}"
