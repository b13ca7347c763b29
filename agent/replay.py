"""Recorded reads: the daemon's ``[record]`` file, and ``edgetally replay`` over it.

A recording is JSON lines of ``Read.to_dict()``; a simulator script (the
``config/scripts/*.jsonl`` the example configs play) is taken too, its reads
timed by its delays. Replay runs each read through
identify and the rules of a config with fresh, in-memory state: no outbox, no
network. The clock comes from the reads themselves (``observed_at``,
``mono_ns``, ``boot_id``), so debounce and movement times come out as they did
live; only ids differ. With nothing delivered, a CANCEL always cancels.

RFID stations also decide by time: the rules tick at the time of each batch of
reads that arrived together, once it is decided (as the daemon's tick waits
for reads already queued), and at the end of the file every pass still open is closed,
so a portal's movements come out as they did live (``ReplayedTick`` rows,
which have no read).

A beam-gated portal's GPI is recorded too, as lines of their own among the
reads: ``{"gpi_watch": {...}}`` when the agent starts listening to a reader's
GPI, ``{"gpi": {...}}`` for each change (device, port, level, its ``mono_ns``
and ``boot_id``). Replay hands them to the rules as ``run`` does, so a pass
the beam did not see moves nothing in replay either. A recording with no
``gpi_watch`` line for a beam's reader (made before GPI was recorded, or a
simulator script) replays that station's passes ungated, the way ``run``
treats passes from before it listened to the beam, and ``replay`` says so.
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
from agent.model import Movement, Read, dumps
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
        if self.path is not None and not self._failed:
            self._line(read.to_json())

    def write_gpi_watch(self, device: str, mono_ns: int, observed_at: str, boot_id: str) -> None:
        """The agent listens to ``device``'s GPI from ``mono_ns`` on (a beam's passes before
        then are not gated)."""
        if self.path is not None and not self._failed:
            fields = {"device": device, "mono_ns": mono_ns, "observed_at": observed_at}
            self._line(dumps({"gpi_watch": {**fields, "boot_id": boot_id}}))

    def write_gpi(
        self, device: str, port: int, high: bool, mono_ns: int, observed_at: str, boot_id: str
    ) -> None:
        """A GPI change (a beam broken or cleared), as the rules got it."""
        if self.path is not None and not self._failed:
            fields = {"device": device, "port": port, "high": high, "mono_ns": mono_ns}
            self._line(dumps({"gpi": {**fields, "observed_at": observed_at, "boot_id": boot_id}}))

    def _line(self, text: str) -> None:
        line = text + "\n"
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
    """A decision time made (a portal pass gone quiet), after recording line ``line``;
    a pass that moved nothing is one too, with its verdict (``beam_not_broken``...)."""

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
            "verdict": d.verdict,
            "movements": [m.to_dict() for m in d.movements],
        }


@dataclass(frozen=True, slots=True)
class GpiLine:
    """A recorded ``gpi_watch`` (``port`` and ``high`` None) or ``gpi`` line."""

    device: str
    mono_ns: int
    boot_id: str
    port: int | None = None
    high: bool | None = None


def parse_reads(lines: Iterable[str], name: str) -> Iterator[tuple[int, Read | GpiLine]]:
    for number, text in enumerate(lines, start=1):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        if '"gpi' in text[:16]:
            yield number, _gpi_line(text, f"{name}:{number}")
            continue
        try:
            yield number, Read.from_json(text)
        except ValueError as exc:
            raise ReplayError(f"{name}:{number}: not a recorded read: {exc}") from exc


def _gpi_line(text: str, where: str) -> GpiLine:
    try:
        outer = json.loads(text)
        kind = next(iter(outer)) if isinstance(outer, dict) and len(outer) == 1 else None
        if kind not in ("gpi", "gpi_watch") or not isinstance(outer[kind], dict):
            raise ValueError('one key, "gpi" or "gpi_watch", holding an object')
        d = outer[kind]
        device, mono_ns, boot_id = d.get("device"), d.get("mono_ns"), d.get("boot_id", "")
        if not isinstance(device, str) or not device:
            raise ValueError(f"device: expected a device id, not {device!r}")
        if type(mono_ns) is not int or mono_ns < 0:
            raise ValueError(f"mono_ns: expected an integer >= 0, not {mono_ns!r}")
        if not isinstance(boot_id, str):
            raise ValueError(f"boot_id: expected text, not {boot_id!r}")
        if kind == "gpi_watch":
            return GpiLine(device, mono_ns, boot_id)
        port, high = d.get("port"), d.get("high")
        if type(port) is not int or port < 0:
            raise ValueError(f"port: expected a GPI port number, not {port!r}")
        if type(high) is not bool:
            raise ValueError(f"high: expected true or false, not {high!r}")
        return GpiLine(device, mono_ns, boot_id, port, high)
    except ValueError as exc:
        raise ReplayError(f"{where}: not a recorded GPI event: {exc}") from exc


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


def replay(
    config: Config, lines: Iterable[str], name: str, notes: list[str] | None = None
) -> Iterator[Replayed | ReplayedTick]:
    """Each read of a recording (or of a simulator script) decided by ``config``'s rules,
    in order, with the decisions time made between them. What the operator should know
    of how it was replayed (a beam the recording lacks) goes to ``notes``, once the
    last result is out."""
    lines = list(lines)
    reads: Iterator[tuple[int, Read | GpiLine]] = (
        script_reads(config, lines, name) if is_script(lines) else parse_reads(lines, name)
    )
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
    number = ticked = last_number = 0
    last: Read | None = None
    watched: set[str] = set()
    for number, read in reads:
        if isinstance(read, GpiLine):  # to the rules as the daemon's GPI task hands it
            if read.port is None:
                watched.add(read.device)
                rules.watch_beam(read.device, read.mono_ns)
            else:
                assert read.high is not None
                rules.gpi(read.device, read.port, read.high, read.mono_ns)
            continue
        # The rules tick at the time of the reads that arrived together, once they
        # are decided, as the daemon's tick waits for reads already queued: a tick
        # between them would take a loaded agent's gap for a silent reader.
        if (
            ticking
            and last is not None
            and (
                last.boot_id != read.boot_id
                or (read.mono_ns != last.mono_ns and last.mono_ns - ticked >= TICK_NS)
            )
        ):
            ticked = last.mono_ns
            for tick in rules.tick(last.mono_ns, last.boot_id):
                if tick.decision.movements or tick.decision.log or tick.decision.verdict:
                    yield ReplayedTick(last_number, tick)
        now.at(read)
        yield Replayed(number, read, rules.decide(read.device, read))
        last, last_number = read, number
    if ticking and last is not None:
        for tick in rules.tick(last.mono_ns, last.boot_id, final=True):
            if tick.decision.movements or tick.decision.log or tick.decision.verdict:
                yield ReplayedTick(number, tick)
    if notes is not None:
        for station, device in rules.beams():
            if device not in watched:
                notes.append(
                    f"station {station}: {name} holds no GPI events of {device} (recorded "
                    "before they were, or a simulator script), so its passes are replayed "
                    "ungated, as live passes from before the agent listened to the beam"
                )


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
