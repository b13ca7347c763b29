"""An LLRP reader emulator: a TCP server that speaks LLRP 1.0.1 for real, driven by a scenario.

sllurp (or any LLRP client) connects to it unmodified. It answers the
reader-control messages with correct LLRPStatus and message ids, keeps ROSpec
state (disabled, inactive, active), sends KEEPALIVEs per the client's
KeepaliveSpec, and streams RO_ACCESS_REPORTs while a ROSpec is active. The
frames come from ``drivers.llrp_frames``, a codec written independently of
sllurp's so that the two check each other.

What is read comes from a scenario (TOML or JSON): antennas in groups
("outside", "inside", shelves) placed along one axis, tag groups that pass a
portal, park near it, sit on a shelf or leave, and faults. ``timeline()`` is
the pure model: deterministic for a seed and independent of how the time is
cut into windows, so tests check it without sockets.

Clocks: tag motion runs on scenario time, which starts when the first ROSpec
starts on a connection and runs ``speed`` times faster than the wall clock;
faults count scenario seconds from the moment the client connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
import tomllib
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from agent.errors import ConfigError
from drivers import llrp_frames as f

Motion = Literal["pass", "parked", "shelf", "leave"]
Malformed = Literal["unknown_type", "short_length", "bad_parameter", "truncated_parameter"]
DEFAULT_X = {"outside": -1.0, "inside": 1.0}
MAX_TAGS_PER_REPORT = 500  # keeps a frame near 20 KiB when the client sets no N
READER_MAC = bytes.fromhex("0016250000ee")


# --- scenario model ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Antenna:
    id: int
    group: str
    x: float  # metres along the path; the door plane is x = 0


@dataclass(frozen=True, slots=True)
class TagGroup:
    name: str
    epcs: tuple[bytes, ...]
    motion: Motion = "pass"
    direction: Literal["in", "out"] = "in"
    near: str | None = None  # antenna group for parked / shelf / leave
    start_s: float = 0.0
    duration_s: float | None = None  # parked/shelf: how long; leave: when it starts moving away
    speed_mps: float = 1.0
    path_m: float = 6.0
    spread_m: float = 1.2  # pallet depth: tags are spread over it
    lateral_m: float = 1.0  # closest distance to an antenna
    rssi_peak_dbm: float = -45.0  # at the closest distance
    read_rate_hz: float | None = None  # per tag per antenna; None = the scenario's rate


@dataclass(frozen=True, slots=True)
class Faults:
    stop_keepalives_at_s: float | None = None  # the reader sends no more KEEPALIVEs
    hang_at_s: float | None = None  # the reader goes silent but keeps the TCP connection
    drop_connection_at_s: float | None = None  # the reader drops the TCP connection
    malformed_frame_at_s: float | None = None
    malformed: Malformed = "unknown_type"


@dataclass(frozen=True, slots=True)
class Flood:
    """Benchmark mode: pre-encoded RO_ACCESS_REPORTs written as fast as the socket takes them."""

    tags: int = 1000
    tags_per_report: int = 100
    reports_per_write: int = 10
    total_reads: int | None = None  # stop after this many TagReportData; None = until stopped


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    antennas: tuple[Antenna, ...]
    tags: tuple[TagGroup, ...] = ()
    seed: int = 1
    speed: float = 1.0  # scenario seconds per wall second
    rate: float = 20.0  # read attempts per second per tag per antenna at full signal
    sensitivity_dbm: float = -70.0  # 50% read probability here
    door_db: float = 10.0  # extra loss between a tag and an antenna on the other side of x = 0
    report_interval_s: float = 0.1  # wall seconds between reports when the ROSpec sets no boundary
    faults: Faults = field(default_factory=Faults)
    flood: Flood | None = None

    @property
    def max_antenna(self) -> int:
        return max(a.id for a in self.antennas)


class _Table:
    """Reads one table of a scenario file; every error names file, key path and expectation."""

    def __init__(self, obj: object, source: str, where: str) -> None:
        if not isinstance(obj, Mapping):
            raise ConfigError(source, where, "expected a table")
        self.obj: Mapping[str, Any] = obj
        self.source = source
        self.where = where

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def unknown(self, allowed: set[str]) -> None:
        extra = sorted(set(self.obj) - allowed)
        if extra:
            raise ConfigError(
                self.source,
                self.key(extra[0]),
                f"unknown key (allowed: {', '.join(sorted(allowed))})",
            )

    def num(
        self, name: str, default: float | None, lo: float | None = None, hi: float | None = None
    ) -> float | None:
        value = self.obj.get(name, default)
        if value is None:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ConfigError(self.source, self.key(name), "expected a number")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ConfigError(self.source, self.key(name), f"expected a number in [{lo}, {hi}]")
        return float(value)

    def req_num(
        self, name: str, default: float, lo: float | None = None, hi: float | None = None
    ) -> float:
        value = self.num(name, default, lo, hi)
        assert value is not None
        return value

    def integer(
        self, name: str, default: int | None, lo: int = 0, hi: int = 2**32 - 1
    ) -> int | None:
        value = self.obj.get(name, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ConfigError(self.source, self.key(name), f"expected an integer in [{lo}, {hi}]")
        return value

    def req_int(self, name: str, default: int, lo: int = 0, hi: int = 2**32 - 1) -> int:
        value = self.integer(name, default, lo, hi)
        assert value is not None
        return value

    def text(self, name: str, default: str | None, choices: tuple[str, ...] = ()) -> str | None:
        value = self.obj.get(name, default)
        if value is None:
            return None
        if not isinstance(value, str) or not value or (choices and value not in choices):
            expected = f"one of {', '.join(choices)}" if choices else "a non-empty string"
            raise ConfigError(self.source, self.key(name), f"expected {expected}")
        return value

    def tables(self, name: str) -> list[_Table]:
        items = self.obj.get(name, [])
        if not isinstance(items, list):
            raise ConfigError(self.source, self.key(name), "expected a list of tables")
        return [_Table(item, self.source, f"{self.key(name)}[{i}]") for i, item in enumerate(items)]


def sgtin96(gtin: str, serial: int, company_prefix_length: int, filter_value: int = 1) -> bytes:
    """An SGTIN-96 EPC, through epcpy (the GS1 Tag Data Standard partition table lives there)."""
    from epcpy.epc_schemes.sgtin import SGTIN, SGTINFilterValue

    sgtin = SGTIN.from_gtin_plus_serial(gtin, str(serial), company_prefix_length)
    bits = sgtin.binary(SGTIN.BinaryCodingScheme.SGTIN_96, SGTINFilterValue(str(filter_value)))
    return int(bits, 2).to_bytes(12, "big")


def _epcs(t: _Table) -> tuple[bytes, ...]:
    listed = t.obj.get("epcs")
    if listed is not None:
        if "gtin" in t.obj or "count" in t.obj:
            raise ConfigError(
                t.source, t.key("epcs"), "expected either 'epcs' or 'gtin' + 'count', not both"
            )
        if not isinstance(listed, list) or not listed:
            raise ConfigError(t.source, t.key("epcs"), "expected a non-empty list of hex EPCs")
        out = []
        for i, text in enumerate(listed):
            try:
                if not isinstance(text, str) or len(text) % 2 or len(text) < 4:
                    raise ValueError(text)
                out.append(bytes.fromhex(text))
            except ValueError:
                raise ConfigError(
                    t.source,
                    f"{t.key('epcs')}[{i}]",
                    "expected an even number of hex digits (EPC bank bits)",
                ) from None
        return tuple(out)
    gtin = t.text("gtin", None)
    count = t.req_int("count", 0, 1, 1_000_000)
    if gtin is None:
        raise ConfigError(t.source, t.where, "expected 'epcs' or 'gtin' + 'count'")
    prefix = t.req_int("company_prefix_length", 7, 6, 12)
    first = t.req_int("serial_start", 1, 0, 2**38 - 1)
    filter_value = t.req_int("filter", 1, 0, 7)
    if first + count > 2**38:
        raise ConfigError(t.source, t.key("count"), "serials must stay below 2^38 for SGTIN-96")
    from biip import ParseError
    from biip.gtin import Gtin

    try:
        gtin = Gtin.parse(gtin).as_gtin_14()  # checks the digits and the check digit
    except ParseError as exc:
        raise ConfigError(
            t.source, t.key("gtin"), f"expected a GTIN-14 that encodes as SGTIN-96 ({exc})"
        ) from exc
    try:
        return tuple(sgtin96(gtin, first + i, prefix, filter_value) for i in range(count))
    except Exception as exc:  # epcpy raises its own ConvertException and ValueErrors
        raise ConfigError(
            t.source, t.key("gtin"), f"expected a GTIN-14 that encodes as SGTIN-96 ({exc})"
        ) from exc


_TAG_KEYS = {
    "name", "epcs", "gtin", "count", "company_prefix_length", "serial_start", "filter", "motion",
    "direction", "near", "start_s", "duration_s", "speed_mps", "path_m", "spread_m", "lateral_m",
    "rssi_peak_dbm", "read_rate_hz",
}  # fmt: skip


def scenario_from_dict(obj: object, source: str = "scenario") -> Scenario:
    """Build a Scenario from parsed TOML/JSON; errors name the source, key path and expectation."""
    top = _Table(obj, source, "")
    top.unknown(
        {
            "name",
            "seed",
            "speed",
            "rate",
            "sensitivity_dbm",
            "door_db",
            "report_interval_s",
            "antennas",
            "tags",
            "faults",
            "flood",
        }
    )
    antennas = []
    for a in top.tables("antennas"):
        a.unknown({"id", "group", "x"})
        group = a.text("group", None)
        if group is None:
            raise ConfigError(
                source, a.key("group"), "expected a group name (e.g. outside, inside)"
            )
        x = a.num("x", DEFAULT_X.get(group))
        if x is None:
            raise ConfigError(
                source, a.key("x"), f"expected a position in metres for group {group!r}"
            )
        antennas.append(Antenna(a.req_int("id", 0, 1, 65535), group, x))
    if not antennas:
        raise ConfigError(source, "antennas", "expected at least one antenna")
    if len({a.id for a in antennas}) != len(antennas):
        raise ConfigError(source, "antennas", "expected distinct antenna ids")
    groups = {a.group for a in antennas}
    tags = []
    for t in top.tables("tags"):
        t.unknown(_TAG_KEYS)
        motion = t.text("motion", "pass", ("pass", "parked", "shelf", "leave"))
        near = t.text("near", None)
        if motion != "pass" and near not in groups:
            raise ConfigError(
                source, t.key("near"), f"expected one of the antenna groups {sorted(groups)}"
            )
        tags.append(
            TagGroup(
                name=t.text("name", t.where) or t.where,
                epcs=_epcs(t),
                motion=motion,  # type: ignore[arg-type]
                direction=t.text("direction", "in", ("in", "out")),  # type: ignore[arg-type]
                near=near,
                start_s=t.req_num("start_s", 0.0, 0),
                duration_s=t.num("duration_s", None, 0),
                speed_mps=t.req_num("speed_mps", 1.0, 0.01, 100),
                path_m=t.req_num("path_m", 6.0, 0.1, 1000),
                spread_m=t.req_num("spread_m", 1.2, 0, 100),
                lateral_m=t.req_num("lateral_m", 1.0, 0.05, 100),
                rssi_peak_dbm=t.req_num("rssi_peak_dbm", -45.0, -100, -10),
                read_rate_hz=t.num("read_rate_hz", None, 0, 10_000),
            )
        )
    faults = Faults()
    if "faults" in top.obj:
        ft = _Table(top.obj["faults"], source, "faults")
        ft.unknown(
            {
                "stop_keepalives_at_s",
                "hang_at_s",
                "drop_connection_at_s",
                "malformed_frame_at_s",
                "malformed",
            }
        )
        kinds = ("unknown_type", "short_length", "bad_parameter", "truncated_parameter")
        faults = Faults(
            ft.num("stop_keepalives_at_s", None, 0),
            ft.num("hang_at_s", None, 0),
            ft.num("drop_connection_at_s", None, 0),
            ft.num("malformed_frame_at_s", None, 0),
            ft.text("malformed", "unknown_type", kinds),  # type: ignore[arg-type]
        )
    flood = None
    if "flood" in top.obj:
        fl = _Table(top.obj["flood"], source, "flood")
        fl.unknown({"tags", "tags_per_report", "reports_per_write", "total_reads"})
        flood = Flood(
            fl.req_int("tags", 1000, 1, 1_000_000),
            fl.req_int("tags_per_report", 100, 1, 1500),
            fl.req_int("reports_per_write", 10, 1, 10_000),
            fl.integer("total_reads", None, 1, 2**63),
        )
    return Scenario(
        name=top.text("name", Path(source).stem) or source,
        antennas=tuple(antennas),
        tags=tuple(tags),
        seed=top.req_int("seed", 1, 0, 2**63),
        speed=top.req_num("speed", 1.0, 0.001, 10_000),
        rate=top.req_num("rate", 20.0, 0, 10_000),
        sensitivity_dbm=top.req_num("sensitivity_dbm", -70.0, -100, -20),
        door_db=top.req_num("door_db", 10.0, 0, 100),
        report_interval_s=top.req_num("report_interval_s", 0.1, 0.001, 60),
        faults=faults,
        flood=flood,
    )


def load_scenario(path: str | Path) -> Scenario:
    """Load a scenario from a .toml or .json file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), "", f"cannot read the scenario ({exc})") from exc
    try:
        obj = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            str(path), "", f"not valid {'JSON' if path.suffix == '.json' else 'TOML'} ({exc})"
        ) from exc
    return scenario_from_dict(obj, str(path))


def bundled_scenario(name: str) -> Path:
    """The path of a scenario shipped in drivers/llrp_scenarios (``portal-inbound``…)."""
    path = Path(__file__).with_name("llrp_scenarios") / f"{name.removesuffix('.toml')}.toml"
    if not path.is_file():
        raise ConfigError(name, "", "no such bundled scenario")
    return path


# --- the tag model -------------------------------------------------------------------------------

_M64 = (1 << 64) - 1


def _mix(key: int) -> int:
    """splitmix64: a stateless hash, so any window of the timeline gives the same reads."""
    z = (key + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def _unit(key: int) -> float:
    return _mix(key) / 2.0**64


@dataclass(frozen=True, slots=True)
class Observation:
    """What a reader saw of one tag on one antenna in a window (the TagReportData content)."""

    epc: bytes
    antenna: int
    rssi: int  # peak, dBm
    first_seen_s: float
    last_seen_s: float
    count: int


@dataclass(frozen=True, slots=True)
class _Tag:
    epc: bytes
    group: TagGroup
    key: int
    x_offset: float
    lateral: float
    gain_db: float
    x_home: float


def _tags(scenario: Scenario) -> Iterator[_Tag]:
    by_group: dict[str, list[float]] = {}
    for a in scenario.antennas:
        by_group.setdefault(a.group, []).append(a.x)
    for gi, group in enumerate(scenario.tags):
        home = sum(by_group[group.near]) / len(by_group[group.near]) if group.near else 0.0
        for ti, epc in enumerate(group.epcs):
            key = _mix(scenario.seed * 1_000_003 + gi * 7_919 + ti)
            yield _Tag(
                epc,
                group,
                key,
                (_unit(key ^ 1) - 0.5) * group.spread_m,
                group.lateral_m * (0.8 + 0.4 * _unit(key ^ 2)),
                (_unit(key ^ 3) + _unit(key ^ 4) + _unit(key ^ 5) - 1.5) * 3.0,  # ≈ N(0, 1.5 dB)
                home + (_unit(key ^ 6) - 0.5) * min(group.spread_m, 0.5),
            )


def _span(tag: _Tag) -> tuple[float, float]:
    """When the tag can be read at all (scenario seconds)."""
    g = tag.group
    if g.motion == "pass":
        lead = (tag.x_offset + g.spread_m / 2) / g.speed_mps
        return g.start_s + lead, g.start_s + lead + g.path_m / g.speed_mps
    if g.motion == "leave":
        leave_at = g.start_s + (g.duration_s or 0.0)
        return g.start_s, leave_at + 20.0 / g.speed_mps
    return g.start_s, math.inf if g.duration_s is None else g.start_s + g.duration_s


def _where(tag: _Tag, t: float, span_start: float) -> tuple[float, float]:
    """(x, lateral distance) of a tag at scenario time t."""
    g = tag.group
    if g.motion == "pass":
        travelled = (t - span_start) * g.speed_mps
        if g.direction == "in":
            return -g.path_m / 2 + travelled, tag.lateral
        return g.path_m / 2 - travelled, tag.lateral
    if g.motion == "leave":
        leave_at = g.start_s + (g.duration_s or 0.0)
        return tag.x_home, tag.lateral + max(0.0, t - leave_at) * g.speed_mps
    return tag.x_home, tag.lateral


def _rssi(scenario: Scenario, tag: _Tag, antenna: Antenna, x: float, lateral: float) -> float:
    """Backscatter falls 40 dB per decade of distance (1/d⁴); a wall or door plane adds door_db."""
    d = math.hypot(x - antenna.x, lateral)
    loss = 40.0 * math.log10(max(d, 0.05) / tag.group.lateral_m)
    if x * antenna.x < 0:
        loss += scenario.door_db
    return tag.group.rssi_peak_dbm + tag.gain_db - loss


def _p_read(scenario: Scenario, rssi: float) -> float:
    z = (rssi - scenario.sensitivity_dbm) / 2.0
    return 1.0 / (1.0 + math.exp(-z)) if z > -40 else 0.0


def timeline(
    scenario: Scenario, t0: float, t1: float, antennas: frozenset[int] | None = None
) -> list[Observation]:
    """Every (tag, antenna) read in scenario time [t0, t1), aggregated as a reader reports them.

    Each tag has one read attempt per ``1/rate`` seconds per antenna (at its own
    phase); an attempt succeeds with a probability that rises from 0 to 1 around
    the sensitivity. Every draw is a hash of (seed, tag, antenna, slot), so the
    result does not depend on how [t0, t1) is split.
    """
    out: list[Observation] = []
    if t1 <= t0:
        return out
    ants = [a for a in scenario.antennas if antennas is None or a.id in antennas]
    for tag in _tags(scenario):
        rate = tag.group.read_rate_hz if tag.group.read_rate_hz is not None else scenario.rate
        lo, hi = _span(tag)
        w0, w1 = max(t0, lo), min(t1, hi)
        if rate <= 0 or w1 <= w0:
            continue
        for antenna in ants:
            if _p_read(scenario, _best_rssi(scenario, tag, antenna, w0, w1, lo)) < 1e-6:
                continue
            akey = _mix(tag.key ^ (antenna.id * 0x9E3779B1))
            phase = _unit(akey)
            k = math.ceil(w0 * rate - phase)
            first = last = -1.0
            peak = -1000.0
            count = 0
            while (t := (k + phase) / rate) < w1:
                if t >= w0:
                    x, lateral = _where(tag, t, lo)
                    rssi = _rssi(scenario, tag, antenna, x, lateral)
                    rssi += (_unit(akey ^ (k * 0x632BE5AB)) - 0.5) * 4.0  # ±2 dB of fading
                    if _unit(akey + k) < _p_read(scenario, rssi):
                        if count == 0:
                            first = t
                        last, count, peak = t, count + 1, max(peak, rssi)
                k += 1
            if count:
                out.append(
                    Observation(
                        tag.epc, antenna.id, max(-128, min(127, round(peak))), first, last, count
                    )
                )
    out.sort(key=lambda o: (o.first_seen_s, o.antenna, o.epc))
    return out


def _best_rssi(
    scenario: Scenario, tag: _Tag, antenna: Antenna, w0: float, w1: float, lo: float
) -> float:
    """An upper bound of the RSSI in the window (motion is monotonic), to skip silent pairs."""
    (xa, la), (xb, lb) = _where(tag, w0, lo), _where(tag, w1, lo)
    x = min(max(antenna.x, min(xa, xb)), max(xa, xb))
    best = _rssi(scenario, tag, antenna, x, min(la, lb))
    if x * antenna.x < 0 and (xa * antenna.x >= 0 or xb * antenna.x >= 0):
        best += scenario.door_db
    return best + 2.0


# --- the reader ----------------------------------------------------------------------------------


@dataclass
class ConnectionRecord:
    """What happened on one client connection (for tests and the CLI)."""

    peer: str
    accepted: bool
    closed: str = ""
    messages: list[str] = field(default_factory=list)
    keepalives_sent: int = 0
    keepalive_acks: int = 0
    reports_sent: int = 0
    tags_reported: int = 0
    errors_sent: int = 0


@dataclass
class _RoSpecRun:
    spec: f.ROSpec
    state: int = f.ROSPEC_DISABLED
    since_wall: float = 0.0
    last_s: float = 0.0
    next_report_wall: float = 0.0


class _Session:
    """One client connection: the reader state machine, keepalives, reports and faults."""

    def __init__(
        self,
        emu: LlrpEmulator,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        record: ConnectionRecord,
    ) -> None:
        self.emu = emu
        self.scenario = emu.scenario
        self.reader = reader
        self.writer = writer
        self.record = record
        self.loop = asyncio.get_running_loop()
        self.connected_wall = self.loop.time()
        self.next_id = 1
        self.keepalive = f.KeepaliveSpec()
        self.events: dict[int, bool] = {}
        self.default_report = f.ROReportSpec()
        self.rospecs: dict[int, _RoSpecRun] = {}
        self.clock_start: float | None = None  # wall (loop) time of scenario t = 0
        self.epoch_us = 0
        self.hung = False
        self.closing = asyncio.Event()

    # time
    def fault_s(self) -> float:
        return (self.loop.time() - self.connected_wall) * self.scenario.speed

    def scene_s(self, wall: float | None = None) -> float:
        if self.clock_start is None:
            return 0.0
        return (
            (self.loop.time() if wall is None else wall) - self.clock_start
        ) * self.scenario.speed

    def utc_us(self, scene_s: float) -> int:
        return self.epoch_us + round(scene_s / self.scenario.speed * 1e6)

    # output
    def send(self, msg: f.Message) -> None:
        if self.writer.is_closing() or self.hung:
            return
        self.writer.write(msg.encode())

    def reader_id(self) -> int:
        self.next_id = self.next_id % 0xFFFFFFFF + 1
        return self.next_id

    def event(self, *events: f.Parameter) -> f.ReaderEventNotification:
        stamp = f.UTCTimestamp(time.time_ns() // 1000)
        return f.ReaderEventNotification(
            self.reader_id(), f.ReaderEventNotificationData(stamp, events)
        )

    async def run(self) -> None:
        self.send(self.event(f.ConnectionAttemptEvent(f.CONNECTION_SUCCESS)))
        tasks = [
            asyncio.create_task(self._keepalives()),
            asyncio.create_task(self._reports()),
            asyncio.create_task(self._faults()),
        ]
        try:
            await self._read_loop()
        finally:
            self.closing.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()

    async def _read_loop(self) -> None:
        buffer = b""
        while not self.closing.is_set():
            try:
                chunk = await self.reader.read(65536)
            except OSError as exc:
                self.record.closed = f"read error: {exc}"
                return
            if not chunk:
                self.record.closed = self.record.closed or "client closed"
                return
            if self.hung:
                continue
            buffer += chunk
            try:
                frames, buffer = f.split_frames(buffer)
            except f.FrameError as exc:
                # A header that cannot be right: answer once, then give up on the stream.
                self._error(exc)
                self.record.closed = f"unframeable input: {exc}"
                return
            for frame in frames:
                self._handle_frame(frame)
                if self.closing.is_set():
                    return

    def _error(self, exc: f.FrameError) -> None:
        kind = exc.msg_type
        reply = f.RESPONSE_TO.get(kind, f.ERROR_MESSAGE) if kind is not None else f.ERROR_MESSAGE
        if exc.status == f.M_UNSUPPORTED_MESSAGE or exc.status == f.M_UNSUPPORTED_VERSION:
            reply = f.ERROR_MESSAGE
        self.record.errors_sent += 1
        self.send(f.StatusResponse(reply, exc.msg_id or 0, f.status(exc.status, str(exc))))

    def _handle_frame(self, frame: bytes) -> None:
        try:
            msg = f.decode_message(frame)
        except f.FrameError as exc:
            name = f.MESSAGE_NAMES.get(exc.msg_type or -1, f"type {exc.msg_type}")
            self._note(name)
            self._error(exc)
            return
        self._note(
            msg.name
            if not isinstance(msg, f.CustomMessage)
            else f"CUSTOM_MESSAGE({msg.vendor}/{msg.subtype})"
        )
        reply = self._dispatch(msg)
        if reply is not None:
            if isinstance(reply, f.StatusResponse) and not reply.status.ok:
                self.record.errors_sent += 1
            self.send(reply)

    def _note(self, name: str) -> None:
        self.record.messages.append(name)
        self.emu.messages_received.append(name)
        self.emu.message_counts[name] += 1

    def _dispatch(self, msg: f.Message) -> f.Message | None:
        mid = msg.msg_id
        if isinstance(msg, f.GetReaderCapabilities):
            return self._capabilities(msg)
        if isinstance(msg, f.GetReaderConfig):
            return self._get_config(msg)
        if isinstance(msg, f.SetReaderConfig):
            return f.StatusResponse(f.SET_READER_CONFIG_RESPONSE, mid, self._set_config(msg))
        if isinstance(msg, f.AddROSpec):
            return f.StatusResponse(f.ADD_ROSPEC_RESPONSE, mid, self._add_rospec(msg.rospec))
        if isinstance(msg, f.SpecCommand):
            return f.StatusResponse(f.RESPONSE_TO[msg.kind], mid, self._spec_command(msg))
        if isinstance(msg, f.CustomMessage):
            if msg.vendor == f.VENDOR_IMPINJ and msg.subtype == f.IMPINJ_ENABLE_EXTENSIONS:
                payload = f.LLRPStatus().encode()
                return f.CustomMessage(
                    mid, f.VENDOR_IMPINJ, f.IMPINJ_ENABLE_EXTENSIONS_RESPONSE, payload
                )
            text = f"custom message vendor {msg.vendor} subtype {msg.subtype} is not supported"
            return f.StatusResponse(f.ERROR_MESSAGE, mid, f.status(f.M_UNSUPPORTED_MESSAGE, text))
        if isinstance(msg, f.Bare):
            if msg.kind == f.KEEPALIVE_ACK:
                self.record.keepalive_acks += 1
                return None
            if msg.kind == f.ENABLE_EVENTS_AND_REPORTS:
                return None  # no response by design (spec 16.1.34)
            if msg.kind == f.CLOSE_CONNECTION:
                self.send(f.StatusResponse(f.CLOSE_CONNECTION_RESPONSE, mid, f.LLRPStatus()))
                self.record.closed = "CLOSE_CONNECTION"
                self.closing.set()
                return None
            if msg.kind == f.GET_REPORT:
                for run in self.rospecs.values():
                    if run.state == f.ROSPEC_ACTIVE:
                        self._report(run, self.loop.time())
                return None
        text = f"{msg.name} is not a message this reader accepts"
        return f.StatusResponse(f.ERROR_MESSAGE, mid, f.status(f.M_UNSUPPORTED_MESSAGE, text))

    # capabilities and configuration

    def _capabilities(self, msg: f.GetReaderCapabilities) -> f.Message:
        if msg.requested > 4:
            st = f.status(f.M_FIELD_ERROR, f"RequestedData {msg.requested} is not 0..4", 0)
            return f.GetReaderCapabilitiesResponse(msg.msg_id, st)
        want = {msg.requested} if msg.requested else {1, 2, 3, 4}
        n = self.scenario.max_antenna
        general = f.GeneralDeviceCapabilities(
            max_antennas=n,
            firmware="edgetally-llrp-emulator 1.0",
            air_protocols=tuple(f.PerAntennaAirProtocol(i) for i in range(1, n + 1)),
        )
        powers = tuple(
            f.TransmitPowerLevelTableEntry(i + 1, 1000 + 25 * i) for i in range(81)
        )  # 10..30 dBm
        hops = tuple(902_750 + 500 * i for i in range(50))
        modes = (
            f.UHFC1G2RFModeTableEntry(0, 1, False, 0, 2, 2, 640_000, 1500, 6250, 6250, 0),
            f.UHFC1G2RFModeTableEntry(1, 1, False, 1, 2, 2, 640_000, 1500, 6250, 6250, 0),
            f.UHFC1G2RFModeTableEntry(2, 1, False, 2, 2, 3, 274_000, 2000, 20_000, 20_000, 0),
            f.UHFC1G2RFModeTableEntry(3, 1, False, 3, 2, 3, 170_600, 2000, 20_000, 20_000, 0),
        )
        band = f.UHFBandCapabilities(
            powers,
            f.FrequencyInformation(True, (f.FrequencyHopTable(1, hops),)),
            f.UHFC1G2RFModeTable(modes),
        )
        return f.GetReaderCapabilitiesResponse(
            msg.msg_id,
            f.LLRPStatus(),
            general if 1 in want else None,
            f.LLRPCapabilities(max_rospecs=8, max_specs_per_rospec=4) if 2 in want else None,
            f.RegulatoryCapabilities(840, 1, band) if 3 in want else None,
            f.C1G2LLRPCapabilities() if 4 in want else None,
        )

    def _get_config(self, msg: f.GetReaderConfig) -> f.Message:
        ids = [a.id for a in self.scenario.antennas]
        if msg.requested > 11:
            st = f.status(f.M_FIELD_ERROR, f"RequestedData {msg.requested} is not 0..11", 1)
            return f.GetReaderConfigResponse(msg.msg_id, st)
        if msg.antenna_id and msg.antenna_id not in ids:
            st = f.status(f.M_FIELD_ERROR, f"no antenna {msg.antenna_id}", 0)
            return f.GetReaderConfigResponse(msg.msg_id, st)
        r = msg.requested
        antennas = tuple(f.AntennaProperties(i) for i in ids if msg.antenna_id in (0, i))
        events = f.ReaderEventNotificationSpec(
            tuple(f.EventNotificationState(e, self.events.get(e, False)) for e in range(9))
        )
        return f.GetReaderConfigResponse(
            msg.msg_id,
            f.LLRPStatus(),
            f.Identification(0, READER_MAC) if r in (0, 1) else None,
            antennas if r in (0, 2) else (),
            events if r in (0, 5) else None,
            self.default_report if r in (0, 4) else None,
            f.AccessReportSpec() if r in (0, 6) else None,
            self.keepalive if r in (0, 8) else None,
            f.EventsAndReports() if r in (0, 11) else None,
        )

    def _set_config(self, msg: f.SetReaderConfig) -> f.LLRPStatus:
        if msg.keepalive is not None:
            if msg.keepalive.trigger not in (0, 1):
                return f.status(
                    f.M_PARAMETER_ERROR, f"KeepaliveTriggerType {msg.keepalive.trigger}"
                )
            if msg.keepalive.trigger == 1 and msg.keepalive.interval_ms == 0:
                return f.status(f.M_PARAMETER_ERROR, "periodic KeepaliveSpec with a 0 ms interval")
        if msg.reset:
            self.keepalive, self.events, self.default_report = (
                f.KeepaliveSpec(),
                {},
                f.ROReportSpec(),
            )
        if msg.keepalive is not None:
            self.keepalive = msg.keepalive
        if msg.event_spec is not None:
            self.events.update({s.event_type: s.enabled for s in msg.event_spec.states})
        if msg.report_spec is not None:
            self.default_report = msg.report_spec
        return f.LLRPStatus()

    # ROSpecs

    def _add_rospec(self, spec: f.ROSpec) -> f.LLRPStatus:
        ids = {a.id for a in self.scenario.antennas}
        if spec.rospec_id == 0:
            return f.status(f.M_FIELD_ERROR, "ROSpecID 0 is reserved", 0)
        if spec.rospec_id in self.rospecs:
            return f.status(f.M_FIELD_ERROR, f"ROSpec {spec.rospec_id} exists", 0)
        if spec.state != f.ROSPEC_DISABLED:
            return f.status(f.M_FIELD_ERROR, "a new ROSpec must be Disabled", 2)
        if len(self.rospecs) >= 8:
            return f.status(f.M_FIELD_ERROR, "at most 8 ROSpecs", 0, f.A_OUT_OF_RANGE)
        if not spec.specs:
            return f.status(
                f.M_MISSING_PARAMETER, "ROSpec has no AISpec (RFSurvey is not supported)"
            )
        for ai in spec.specs:
            bad = [i for i in ai.antenna_ids if i and i not in ids]
            if bad or not ai.antenna_ids:
                return f.status(
                    f.M_PARAMETER_ERROR,
                    f"AISpec antennas {list(ai.antenna_ids)}: reader has {sorted(ids)}",
                )
        if spec.boundary.start.trigger not in (0, 1):
            return f.status(
                f.M_PARAMETER_ERROR, "only Null and Immediate ROSpec start triggers are supported"
            )
        self.rospecs[spec.rospec_id] = _RoSpecRun(spec)
        return f.LLRPStatus()

    def _spec_command(self, msg: f.SpecCommand) -> f.LLRPStatus:
        kind, sid = msg.kind, msg.spec_id
        if kind in (f.DELETE_ACCESSSPEC, f.ENABLE_ACCESSSPEC, f.DISABLE_ACCESSSPEC):
            if kind == f.DELETE_ACCESSSPEC and sid == 0:
                return f.LLRPStatus()  # there are none to delete
            return f.status(
                f.M_FIELD_ERROR, f"no AccessSpec {sid} (AccessSpecs are not supported)", 0
            )
        if sid == 0 and kind in (f.START_ROSPEC, f.STOP_ROSPEC):
            return f.status(f.M_FIELD_ERROR, "ROSpecID 0 is not allowed here", 0)
        if sid and sid not in self.rospecs:
            return f.status(f.M_FIELD_ERROR, f"no ROSpec {sid}", 0)
        runs = list(self.rospecs.values()) if sid == 0 else [self.rospecs[sid]]
        now = self.loop.time()
        if kind == f.START_ROSPEC and runs[0].state == f.ROSPEC_DISABLED:
            return f.status(f.M_FIELD_ERROR, f"ROSpec {sid} is disabled", 0)
        for run in runs:
            if kind == f.ENABLE_ROSPEC and run.state == f.ROSPEC_DISABLED:
                run.state = f.ROSPEC_INACTIVE
                if run.spec.boundary.start.trigger == 1:  # Immediate
                    self._start(run, now)
            elif kind == f.START_ROSPEC and run.state == f.ROSPEC_INACTIVE:
                self._start(run, now)
            elif kind == f.STOP_ROSPEC and run.state == f.ROSPEC_ACTIVE:
                self._stop(run, now, f.ROSPEC_INACTIVE)
            elif kind in (f.DISABLE_ROSPEC, f.DELETE_ROSPEC):
                self._stop(run, now, f.ROSPEC_DISABLED)
        if kind == f.DELETE_ROSPEC:
            for run in runs:
                del self.rospecs[run.spec.rospec_id]
        return f.LLRPStatus()

    def _start(self, run: _RoSpecRun, now: float) -> None:
        if self.clock_start is None:
            self.clock_start = now
            self.epoch_us = time.time_ns() // 1000
        run.state, run.since_wall, run.last_s = f.ROSPEC_ACTIVE, now, self.scene_s(now)
        run.next_report_wall = now + self._interval(run)
        if self.events.get(2):
            self.send(self.event(f.ROSpecEvent(0, run.spec.rospec_id)))

    def _stop(self, run: _RoSpecRun, now: float, state: int) -> None:
        if run.state == f.ROSPEC_ACTIVE:
            self._report(run, now)
            if self.events.get(2):
                self.send(self.event(f.ROSpecEvent(1, run.spec.rospec_id)))
        run.state = state

    def _interval(self, run: _RoSpecRun) -> float:
        """Wall seconds between reports: the AISpec's boundary, else the scenario's interval."""
        stop = run.spec.specs[0].stop
        if stop.trigger == 1 and stop.duration_ms:
            return stop.duration_ms / 1000
        if stop.trigger == 3 and stop.tag_observation and stop.tag_observation.timeout_ms:
            return stop.tag_observation.timeout_ms / 1000
        return self.scenario.report_interval_s

    def _chunk(self, run: _RoSpecRun) -> int:
        n = (run.spec.report or self.default_report).n
        stop = run.spec.specs[0].stop
        if stop.trigger == 3 and stop.tag_observation and stop.tag_observation.number_of_tags:
            n = min(n or MAX_TAGS_PER_REPORT, stop.tag_observation.number_of_tags)
        return min(n or MAX_TAGS_PER_REPORT, MAX_TAGS_PER_REPORT)

    def _report(self, run: _RoSpecRun, now: float) -> None:
        s0, s1 = run.last_s, self.scene_s(now)
        run.last_s = s1
        if self.scenario.flood is not None or s1 <= s0:
            return
        wanted: set[int] = set()
        for ai in run.spec.specs:
            wanted.update(ai.antenna_ids)
        antennas = None if 0 in wanted else frozenset(wanted)
        sel = (run.spec.report or self.default_report).selector
        rid = run.spec.rospec_id
        tags = [
            f.TagReportData(
                o.epc,
                epc96=len(o.epc) == 12,
                rospec_id=rid if sel.rospec_id else None,
                spec_index=1 if sel.spec_index else None,
                inventory_parameter_spec_id=1 if sel.inventory_parameter_spec_id else None,
                antenna_id=o.antenna if sel.antenna_id else None,
                peak_rssi=o.rssi if sel.peak_rssi else None,
                channel_index=1 if sel.channel_index else None,
                first_seen=self.utc_us(o.first_seen_s) if sel.first_seen else None,
                last_seen=self.utc_us(o.last_seen_s) if sel.last_seen else None,
                tag_seen_count=min(o.count, 0xFFFF) if sel.tag_seen_count else None,
                access_spec_id=0 if sel.access_spec_id else None,
            )
            for o in timeline(self.scenario, s0, s1, antennas)
        ]
        size = self._chunk(run)
        for i in range(0, len(tags), size):
            self.send(f.ROAccessReport(self.reader_id(), tuple(tags[i : i + size])))
            self.record.reports_sent += 1
            self.record.tags_reported += len(tags[i : i + size])

    # background loops

    async def _reports(self) -> None:
        while not self.closing.is_set():
            now = self.loop.time()
            flooding = self.scenario.flood is not None
            for run in list(self.rospecs.values()):
                if run.state != f.ROSPEC_ACTIVE or self.hung:
                    continue
                boundary = run.spec.boundary.stop
                if boundary.trigger == 1 and now - run.since_wall >= boundary.duration_ms / 1000:
                    self._stop(run, now, f.ROSPEC_INACTIVE)
                elif flooding:
                    await self._flood(run)
                elif now >= run.next_report_wall:
                    self._report(run, now)
                    run.next_report_wall = now + self._interval(run)
            await asyncio.sleep(0.005)

    async def _flood(self, run: _RoSpecRun) -> None:
        """Write pre-encoded reports until the ROSpec stops, the total is sent, or the client goes."""
        flood = self.scenario.flood
        assert flood is not None
        blob, per_write = _flood_blob(self.scenario, flood, run.spec.rospec_id, self.epoch_us)
        frame_len = len(blob) // flood.reports_per_write
        data = bytearray(blob)
        sent = 0
        while run.state == f.ROSPEC_ACTIVE and not self.writer.is_closing() and not self.hung:
            if flood.total_reads is not None and sent >= flood.total_reads:
                run.state = (
                    f.ROSPEC_INACTIVE
                )  # the benchmark's run is over: stop as a Duration trigger would
                return
            for i in range(flood.reports_per_write):
                f.HEADER.pack_into(
                    data,
                    i * frame_len,
                    (f.VERSION << 10) | f.RO_ACCESS_REPORT,
                    frame_len,
                    self.reader_id(),
                )
            out = data
            if flood.total_reads is not None and sent + per_write > flood.total_reads:
                whole = -(-(flood.total_reads - sent) // flood.tags_per_report)
                out = data[: whole * frame_len]
            self.writer.write(out)
            sent += (len(out) // frame_len) * flood.tags_per_report
            self.record.reports_sent += len(out) // frame_len
            self.record.tags_reported += (len(out) // frame_len) * flood.tags_per_report
            await self.writer.drain()
            await asyncio.sleep(0)  # let the read loop see KEEPALIVE_ACK, STOP_ROSPEC…

    async def _keepalives(self) -> None:
        stop_at = self.scenario.faults.stop_keepalives_at_s
        while not self.closing.is_set():
            spec = self.keepalive
            if spec.trigger != 1 or spec.interval_ms == 0:
                await asyncio.sleep(0.01)
                continue
            await asyncio.sleep(spec.interval_ms / 1000)
            if self.keepalive is not spec or self.hung:
                continue
            if stop_at is not None and self.fault_s() >= stop_at:
                continue
            self.send(f.Bare(f.KEEPALIVE, self.reader_id()))
            self.record.keepalives_sent += 1

    async def _faults(self) -> None:
        faults = self.scenario.faults
        plan = sorted(
            (at, what)
            for at, what in (
                (faults.hang_at_s, "hang"),
                (faults.malformed_frame_at_s, "malformed"),
                (faults.drop_connection_at_s, "drop"),
            )
            if at is not None
        )
        for at, what in plan:
            delay = (at - self.fault_s()) / self.scenario.speed
            if delay > 0:
                await asyncio.sleep(delay)
            if what == "hang":
                self.hung = True
            elif what == "malformed":
                self.send_raw(_malformed(faults.malformed, self.reader_id()))
            else:
                self.record.closed = "dropped (fault)"
                self.writer.transport.abort()
                self.closing.set()
                return

    def send_raw(self, data: bytes) -> None:
        if not self.writer.is_closing() and not self.hung:
            self.writer.write(data)

    async def close(self) -> None:
        """The reader closes the connection: it says so with a ConnectionCloseEvent first."""
        if not self.writer.is_closing():
            self.send(self.event(f.ConnectionCloseEvent()))
            with contextlib.suppress(OSError):
                await self.writer.drain()
        self.record.closed = self.record.closed or "reader closed"
        self.closing.set()


def _malformed(kind: Malformed, msg_id: int) -> bytes:
    """A deliberately bad frame; each kind trips a different path in a client's decoder."""
    if kind == "unknown_type":
        return f.HEADER.pack((1 << 10) | 999, 10, msg_id)
    if kind == "short_length":
        return f.HEADER.pack((1 << 10) | f.RO_ACCESS_REPORT, 4, msg_id)
    if kind == "bad_parameter":  # a TV type no spec defines inside a TagReportData
        body = b"\x8d" + bytes(12) + b"\xff\x00"
        trd = f.Tlv(240, body).encode()
        return f.HEADER.pack((1 << 10) | f.RO_ACCESS_REPORT, 10 + len(trd), msg_id) + trd
    # truncated_parameter: a TagReportData whose length runs past the end of the message
    trd = _tlv_header(240, 200) + b"\x8d" + bytes(12)
    return f.HEADER.pack((1 << 10) | f.RO_ACCESS_REPORT, 10 + len(trd), msg_id) + trd


def _tlv_header(ptype: int, length: int) -> bytes:
    return ptype.to_bytes(2, "big") + length.to_bytes(2, "big")


def _flood_blob(
    scenario: Scenario, flood: Flood, rospec_id: int, epoch_us: int
) -> tuple[bytes, int]:
    """``reports_per_write`` RO_ACCESS_REPORT frames of ``tags_per_report`` tags, encoded once."""
    epcs = [e for g in scenario.tags for e in g.epcs] or [
        sgtin96("00614141123452", i + 1, 7) for i in range(min(flood.tags, 10_000))
    ]
    epcs = (epcs * (flood.tags // len(epcs) + 1))[: flood.tags]
    ids = [a.id for a in scenario.antennas]
    frames = []
    n = 0
    for _ in range(flood.reports_per_write):
        tags = []
        for _ in range(flood.tags_per_report):
            epc = epcs[n % len(epcs)]
            tags.append(
                f.TagReportData(
                    epc,
                    epc96=len(epc) == 12,
                    rospec_id=rospec_id,
                    antenna_id=ids[n % len(ids)],
                    peak_rssi=-50 - n % 20,
                    first_seen=epoch_us + n,
                    last_seen=epoch_us + n,
                    tag_seen_count=1,
                )
            )
            n += 1
        frames.append(f.ROAccessReport(0, tuple(tags)).encode())
    if len({len(fr) for fr in frames}) != 1:
        raise ValueError("flood frames differ in size: use EPCs of one length")
    return b"".join(frames), flood.reports_per_write * flood.tags_per_report


# --- the server ----------------------------------------------------------------------------------


class LlrpEmulator:
    """``async with LlrpEmulator(scenario) as emu:`` listens on ``emu.port`` until the block ends.

    Like a real reader it serves one client at a time: a second connection is
    told ``Failed (a Client initiated connection already exists)`` and closed.
    """

    def __init__(self, scenario: Scenario, host: str = "127.0.0.1", port: int = 0) -> None:
        self.scenario = scenario
        self.host = host
        self.port = port
        self.connections: list[ConnectionRecord] = []
        self.messages_received: deque[str] = deque(maxlen=100_000)
        self.message_counts: Counter[str] = Counter()
        self._server: asyncio.Server | None = None
        self._active: _Session | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def session_active(self) -> bool:
        return self._active is not None

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._active is not None:
            await self._active.close()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=2)
        for task in self._handlers:
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        peer = writer.get_extra_info("peername")
        peer_text = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        try:
            if self._active is not None:
                record = ConnectionRecord(
                    peer_text, accepted=False, closed="refused: a client is connected"
                )
                self.connections.append(record)
                data = f.ReaderEventNotificationData(
                    f.UTCTimestamp(time.time_ns() // 1000),
                    (f.ConnectionAttemptEvent(f.CONNECTION_FAILED_CLIENT_INITIATED_EXISTS),),
                )
                writer.write(f.ReaderEventNotification(1, data).encode())
                with contextlib.suppress(OSError):
                    await writer.drain()
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                return
            record = ConnectionRecord(peer_text, accepted=True)
            self.connections.append(record)
            session = _Session(self, reader, writer, record)
            self._active = session
            try:
                await session.run()
            finally:
                self._active = None
        finally:
            self._handlers.discard(task)


async def serve(
    scenario: Scenario,
    host: str = "127.0.0.1",
    port: int = 5084,
    on_ready: Callable[[LlrpEmulator], None] | None = None,
) -> None:
    """Run the emulator until cancelled (the CLI's Ctrl+C); ``on_ready`` sees it listening."""
    async with LlrpEmulator(scenario, host, port) as emu:
        if on_ready is not None:
            on_ready(emu)
        await asyncio.Event().wait()
