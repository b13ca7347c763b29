"""Scenarios as data: antennas, tag groups, faults and flood mode, loaded from TOML or JSON."""

from __future__ import annotations

import difflib
import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agent.errors import ConfigError

Motion = Literal["pass", "parked", "shelf", "leave"]
Malformed = Literal["unknown_type", "short_length", "bad_parameter", "truncated_parameter"]
DEFAULT_X = {"outside": -1.0, "inside": 1.0}
# Ways real readers answer differently from what sllurp expects (issue 17): each one
# is a behaviour seen on a reader, turned on by name (``quirks = [...]``, ``--quirks``).
Quirk = Literal[
    "events-unsupported",  # ERROR_MESSAGE (M_UnsupportedMessage) to ENABLE_EVENTS_AND_REPORTS
    "delete-all-refused",  # DELETE_ROSPEC with ROSpecID 0 gets a parameter error "no ROSpec 0"
    "immediate-never-starts",  # an Immediate start trigger enables the ROSpec but never starts it
    "tid-epcs",  # tags answer with a TID-like E280... id instead of their EPC
    "partial-frame-at-close",  # the reader writes 2 bytes of a frame, then closes the connection
]
QUIRKS: tuple[Quirk, ...] = (
    "events-unsupported",
    "delete-all-refused",
    "immediate-never-starts",
    "tid-epcs",
    "partial-frame-at-close",
)


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
    # Requests the reader answers with ERROR_MESSAGE (M_UnsupportedMessage), by LLRP name.
    unsupported: tuple[str, ...] = ()


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
    beam_gpi: int | None = None  # a beam sensor across the door on this GPI port (beam.py)
    quirks: frozenset[Quirk] = frozenset()

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
            "beam_gpi",
            "quirks",
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
                "unsupported",
            }
        )
        kinds = ("unknown_type", "short_length", "bad_parameter", "truncated_parameter")
        faults = Faults(
            ft.num("stop_keepalives_at_s", None, 0),
            ft.num("hang_at_s", None, 0),
            ft.num("drop_connection_at_s", None, 0),
            ft.num("malformed_frame_at_s", None, 0),
            ft.text("malformed", "unknown_type", kinds),  # type: ignore[arg-type]
            _unsupported(ft),
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
        beam_gpi=top.integer("beam_gpi", None, 1, 65535),
        quirks=parse_quirks(top.obj.get("quirks", []), source, "quirks"),
    )


def parse_quirks(value: object, source: str, key: str) -> frozenset[Quirk]:
    """Quirk names (a list, or one comma-separated text as the CLI takes); ``all`` = every one."""
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(source, key, f"expected a list of quirk names ({', '.join(QUIRKS)})")
    out: set[Quirk] = set()
    for name in (n.strip() for n in names):
        if name == "all":
            out.update(QUIRKS)
        elif name in QUIRKS:
            out.add(name)
        elif name:
            close = difflib.get_close_matches(name, QUIRKS, 1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                source, key, f"unknown quirk {name!r}{hint}: expected {', '.join(QUIRKS)} or all"
            )
    return frozenset(out)


def _unsupported(t: _Table) -> tuple[str, ...]:
    from drivers.llrp_frames import MESSAGE_NAMES

    names = t.obj.get("unsupported", [])
    known = sorted(n for n in MESSAGE_NAMES.values() if not n.endswith("_RESPONSE"))
    if not isinstance(names, list) or not all(isinstance(n, str) and n in known for n in names):
        raise ConfigError(
            t.source, t.key("unsupported"), f"expected a list of LLRP request names ({known[0]}...)"
        )
    return tuple(names)


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
    path = Path(__file__).parent.parent / "llrp_scenarios" / f"{name.removesuffix('.toml')}.toml"
    if not path.is_file():
        raise ConfigError(name, "", "no such bundled scenario")
    return path
