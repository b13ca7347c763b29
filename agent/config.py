"""Typed TOML config: every setting has a type, a default and help text.

Like datasette's SETTINGS table: unknown keys and wrong types are rejected at
start-up with a ConfigError naming the file, the key path and what was
expected. Config is passed in to whatever needs it; nothing reads it globally.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from agent.errors import ConfigError
from agent.identify.settings import IdentifySettings

T = TypeVar("T")
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


class Size(int):
    """A byte count written as 536870912, "512MB" or "512MiB"."""


def _help(text: str, **extra: Any) -> dict[str, Any]:
    return {"help": text, **extra}


@dataclass(frozen=True)
class AgentSettings:
    id: str = field(metadata=_help("this agent's id; the ledger knows its token by it", id=True))
    state_dir: Path = field(
        default=Path("/var/lib/edgetally"),
        metadata=_help("where the outbox lives (systemd's StateDirectory)"),
    )
    log_level: Literal["debug", "info", "warning", "error"] = field(
        default="info", metadata=_help("log level of the JSON logs on stdout")
    )


@dataclass(frozen=True)
class OutboxSettings:
    path: Path = field(
        default=Path("outbox.db"),
        metadata=_help("SQLite file, relative to agent.state_dir", under_state_dir=True),
    )
    max_bytes: Size = field(
        default=Size(512 * 2**20),
        metadata=_help("size cap; at the cap new reads are refused with an alarm", minimum=1 << 20),
    )
    retention_days: float = field(
        default=30.0, metadata=_help("days delivered movements are kept", minimum=0)
    )
    group_max: int = field(
        default=512, metadata=_help("most writes committed in one transaction", minimum=1)
    )
    prune_interval_s: float = field(
        default=3600.0, metadata=_help("how often retention pruning runs", minimum=1)
    )


@dataclass(frozen=True)
class SyncSettings:
    url: str = field(metadata=_help("base URL of the ledger, http:// or https://", url=True))
    token_file: Path = field(
        metadata=_help(
            "file holding the agent's bearer token; ${CREDENTIALS_DIRECTORY} is expanded "
            "when it is read",
            late_env=True,
        )
    )
    sink: Literal["http-ledger"] = field(
        default="http-ledger", metadata=_help("where movements go")
    )
    batch_max: int = field(
        default=500, metadata=_help("most movements per request", minimum=1, maximum=10000)
    )
    batch_max_bytes: Size = field(
        default=Size(1 << 20), metadata=_help("most payload bytes per request", minimum=1024)
    )
    timeout_s: float = field(default=10.0, metadata=_help("per-request timeout", minimum=0.1))
    backoff_initial_s: float = field(
        default=0.5, metadata=_help("first retry wait (full jitter)", minimum=0.001)
    )
    backoff_cap_s: float = field(default=300.0, metadata=_help("longest retry wait", minimum=0.01))
    auth_retry_s: float = field(
        default=300.0, metadata=_help("retry wait after 401/403 (a config alarm)", minimum=0.01)
    )
    stall_alarm_s: float = field(
        default=600.0, metadata=_help("backlog age that raises the stall alarm", minimum=1)
    )
    verify_tls: bool = field(default=True, metadata=_help("verify the ledger's TLS certificate"))
    ca_file: Path | None = field(
        default=None, metadata=_help("CA bundle for the ledger's certificate")
    )


@dataclass(frozen=True)
class HealthSettings:
    listen: str = field(
        default="127.0.0.1:8711",
        metadata=_help(
            "host:port of /healthz, /metrics and /status; empty to turn off", listen=True
        ),
    )
    outbox_warn_ratio: float = field(
        default=0.9,
        metadata=_help("outbox use (of max_bytes) that makes /healthz 503", minimum=0.01),
    )
    require_clock_sync: bool = field(
        default=True, metadata=_help("an unsynchronised wall clock makes /healthz 503")
    )


StationKind = Literal["receiving", "shipping", "returns", "putaway", "count", "portal", "zone"]
Disposition = Literal["restock", "damaged", "quarantine"]


@dataclass(frozen=True)
class StationSettings:
    name: str = field(metadata=_help("station name, sent with every movement", id=True))
    kind: StationKind = field(metadata=_help("what the station does (DESIGN §3)"))
    location: str | None = field(
        default=None,
        metadata=_help(
            "the station's location: receiving dock (to), shipping dock (from), returns "
            "area (to), default count location; required for receiving, shipping, returns"
        ),
    )
    devices: list[str] = field(default_factory=list, metadata=_help("ids of its devices"))
    staging: str | None = field(
        default=None,
        metadata=_help("putaway only, required: the staging location items are moved from"),
    )
    quarantine_location: str | None = field(
        default=None,
        metadata=_help("returns only: where `quarantine` returns go (default: location)"),
    )
    disposition: Disposition = field(
        default="restock",
        metadata=_help("returns only: the disposition until a DISP code says otherwise"),
    )
    asn_file: Path | None = field(
        default=None,
        metadata=_help(
            'receiving only: JSON of expected lines per PO, {"PO-1": {"<GTIN>": qty}}; '
            "over/short is reported when the PO closes"
        ),
    )
    debounce_ms: int = field(
        default=0,
        metadata=_help(
            "the same data from the same device within this time is one (double) read; 0: off",
            minimum=0,
            maximum=60000,
        ),
    )
    unknown: Literal["reject", "accept-as-sku"] = field(
        default="reject",
        metadata=_help("codes that are not GS1, EPC, a location or a command: refuse, or a SKU"),
    )
    pairing: bool = field(
        default=True, metadata=_help("handhelds may join this station with PAIR:<name>")
    )
    require_operator: bool = field(
        default=False, metadata=_help("items are refused until a badge (OP:<id>) is scanned")
    )
    # ---- RFID: portal (direction through a door) and zone (Arrived/Moved/Departed) ----
    outside_antennas: list[int] = field(
        default_factory=list,
        metadata=_help("portal only, required: antenna ids on the outside (yard) side", minimum=1),
    )
    inside_antennas: list[int] = field(
        default_factory=list,
        metadata=_help("portal only, required: antenna ids on the inside side", minimum=1),
    )
    quiet_ms: int = field(
        default=1500,
        metadata=_help(
            "portal only: a tag's pass is decided once it has not been read for this long",
            minimum=50,
            maximum=600000,
        ),
    )
    min_reads: int = field(
        default=2,
        metadata=_help(
            "portal only: reads needed on each side before a crossing is believed",
            minimum=1,
            maximum=10000,
        ),
    )
    min_confidence: float = field(
        default=0.75,
        metadata=_help(
            "portal only: direction confidence (0.5-1, see agent/rules/portal.py) below which "
            "a pass moves nothing",
            minimum=0.5,
            maximum=1.0,
        ),
    )
    max_track_ms: int = field(
        default=60000,
        metadata=_help(
            "portal only: a tag read without pause for this long (parked in the field) is "
            "decided with what it has and tracked afresh",
            minimum=1000,
            maximum=3600000,
        ),
    )
    max_tracks: int = field(
        default=20000,
        metadata=_help(
            "portal and zone: tags tracked in memory at once; past it a portal decides its "
            "oldest pass early and a zone leaves new tags untracked (counted in status)",
            minimum=10,
            maximum=1000000,
        ),
    )
    class_level: bool = field(
        default=False,
        metadata=_help("portal only: one movement per GTIN with a qty, not one per SGTIN"),
    )
    outside_location: str | None = field(
        default=None,
        metadata=_help(
            "portal only: the location outside the door; set, crossings are transfers "
            "(in: outside -> location, out: location -> outside), unset, receive and ship"
        ),
    )
    dedup_ms: int = field(
        default=3600000,
        metadata=_help(
            "portal only: a second crossing of a tag in the same direction within this time "
            "(with no crossing back between) moves nothing; decided crossings are kept this long",
            minimum=1000,
            maximum=30 * 86400000,
        ),
    )
    antenna_locations: list[str] = field(
        default_factory=list,
        metadata=_help(
            'zone only, required: where each antenna looks, as "antenna=LOCATION" '
            '(["1=SHELF-A", "2=SHELF-B"]); antennas sharing a location are one place'
        ),
    )
    zone_from_location: str | None = field(
        default=None,
        metadata=_help(
            "zone only: where arriving tags come from; set, an arrival is a transfer from "
            "it, unset, a receive"
        ),
    )
    departed_location: str | None = field(
        default=None,
        metadata=_help(
            "zone only: where departing tags go; set, a departure is a transfer to it, "
            "unset, a ship from the tag's last location"
        ),
    )
    departed_after_ms: int = field(
        default=30000,
        metadata=_help(
            "zone only: a present tag not read for this long has departed",
            minimum=100,
            maximum=86400000,
        ),
    )
    mobility_threshold_dbm: float = field(
        default=6.0,
        metadata=_help(
            "zone only (EdgeX mobility profile): how much stronger (dB) a new location's mean "
            "RSSI must be, while the current one is fresh, for the tag to move",
            minimum=0.0,
            maximum=100.0,
        ),
    )
    mobility_holdoff_ms: int = field(
        default=500,
        metadata=_help(
            "zone only (EdgeX mobility profile): for this long after the current location's "
            "last read the full threshold applies",
            minimum=0,
            maximum=86400000,
        ),
    )
    mobility_slope: float = field(
        default=-0.008,
        metadata=_help(
            "zone only (EdgeX mobility profile): dB per ms the threshold falls after the "
            "holdoff (older reads at the current location count less)",
            minimum=-100.0,
            maximum=0.0,
        ),
    )

    def check(self) -> list[tuple[str, str]]:
        """Keys each RFID kind needs, and RFID keys set on a kind that does not use them."""
        problems: list[tuple[str, str]] = []
        defaults = {f.name: f for f in fields(self)}
        for key in _RFID_ONLY:
            spec = defaults[key]
            default = spec.default if spec.default_factory is MISSING else spec.default_factory()
            kinds = _RFID_ONLY[key]
            if getattr(self, key) != default and self.kind not in kinds:
                problems.append((key, f"only for a {' or '.join(kinds)} station, not {self.kind}"))
        if self.kind == "portal":
            if not self.location:
                problems.append(("location", "required for a portal station (the inside)"))
            if not self.outside_antennas:
                problems.append(("outside_antennas", "a non-empty list of antenna ids"))
            if not self.inside_antennas:
                problems.append(("inside_antennas", "a non-empty list of antenna ids"))
            both = sorted(set(self.outside_antennas) & set(self.inside_antennas))
            if both:
                problems.append(
                    ("inside_antennas", f"antennas on one side only; {both} are also outside")
                )
            if self.dedup_ms < self.max_track_ms + self.quiet_ms:
                problems.append(
                    (
                        "dedup_ms",
                        "at least max_track_ms + quiet_ms: a restart rebuilds passes from "
                        "that long ago, and their crossings must still be known",
                    )
                )
            if self.outside_location is not None and self.outside_location == self.location:
                problems.append(("outside_location", "a location other than `location`"))
        if self.kind == "zone":
            if not self.antenna_locations:
                problems.append(
                    ("antenna_locations", 'a non-empty list of "antenna=LOCATION" strings')
                )
            seen: set[int] = set()
            for text in self.antenna_locations:
                parsed = parse_antenna_location(text)
                if parsed is None:
                    problems.append(
                        (
                            "antenna_locations",
                            f'"antenna=LOCATION" with an antenna id 1-65535, got {text!r}',
                        )
                    )
                elif parsed[0] in seen:
                    problems.append(
                        ("antenna_locations", f"each antenna once; {parsed[0]} is listed twice")
                    )
                else:
                    seen.add(parsed[0])
        return problems


_RFID_ONLY = {
    "outside_antennas": ("portal",),
    "inside_antennas": ("portal",),
    "quiet_ms": ("portal",),
    "min_reads": ("portal",),
    "min_confidence": ("portal",),
    "max_track_ms": ("portal",),
    "max_tracks": ("portal", "zone"),
    "class_level": ("portal",),
    "outside_location": ("portal",),
    "dedup_ms": ("portal",),
    "antenna_locations": ("zone",),
    "zone_from_location": ("zone",),
    "departed_location": ("zone",),
    "departed_after_ms": ("zone",),
    "mobility_threshold_dbm": ("zone",),
    "mobility_holdoff_ms": ("zone",),
    "mobility_slope": ("zone",),
}
_LOCATION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")


def parse_antenna_location(text: str) -> tuple[int, str] | None:
    """``"3=SHELF-B"`` -> (3, "SHELF-B"); None when it is not that shape."""
    antenna, eq, location = text.partition("=")
    if not eq or not antenna.isdigit() or not antenna.isascii() or not _LOCATION_RE.match(location):
        return None
    number = int(antenna)
    return (number, location) if 1 <= number <= 65535 else None


@dataclass(frozen=True)
class RecordSettings:
    path: Path | None = field(
        default=None,
        metadata=_help(
            "append every read as a JSON line here (for `edgetally replay`), relative to "
            "agent.state_dir; unset: off",
            under_state_dir=True,
        ),
    )
    max_bytes: Size = field(
        default=Size(64 * 2**20),
        metadata=_help(
            "at this size the file is rotated to <path>.1 (the older .1 is replaced)",
            minimum=1 << 16,
        ),
    )


@dataclass(frozen=True)
class DeviceSettings:
    """A device: ``id``, ``driver`` and the driver's own options, checked by the driver."""

    id: str
    driver: str
    options: Any


@dataclass(frozen=True)
class Config:
    file: Path
    agent: AgentSettings
    outbox: OutboxSettings
    sync: SyncSettings
    health: HealthSettings = field(default_factory=HealthSettings)
    devices: tuple[DeviceSettings, ...] = ()
    stations: tuple[StationSettings, ...] = ()
    record: RecordSettings = field(default_factory=RecordSettings)
    identify: IdentifySettings = field(default_factory=IdentifySettings)

    @property
    def outbox_path(self) -> Path:
        return self.agent.state_dir / self.outbox.path

    @property
    def record_path(self) -> Path | None:
        path = self.record.path
        return None if path is None else self.agent.state_dir / path

    def shown(self) -> dict[str, Any]:
        """The config in effect, for `config show`; the token is never read here."""
        from dataclasses import asdict

        out = {
            "agent": asdict(self.agent),
            "outbox": asdict(self.outbox),
            "sync": asdict(self.sync),
            "health": asdict(self.health),
            "devices": [
                {"id": d.id, "driver": d.driver, **asdict(d.options)} for d in self.devices
            ],
            "stations": [asdict(s) for s in self.stations],
            "record": asdict(self.record),
            "identify": asdict(self.identify),
        }
        shown: dict[str, Any] = _jsonable(out)
        return shown


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


_TOP = {
    "agent": AgentSettings,
    "outbox": OutboxSettings,
    "sync": SyncSettings,
    "health": HealthSettings,
    "devices": None,
    "stations": None,
    "record": RecordSettings,
    "identify": IdentifySettings,
}


def load_config(path: Path | str) -> Config:
    path = Path(path)
    file = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(file, "", f"cannot read the config file ({exc.strerror})") from exc
    try:
        table = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(file, "", "expected UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "", f"not valid TOML: {exc}") from exc
    return parse_config(table, file=file, base=path.parent)


def parse_config(table: dict[str, Any], file: str, base: Path) -> Config:
    """Build a Config from parsed TOML; paths are taken relative to ``base``."""
    _no_unknown(table, _TOP, "", file)
    for name in ("agent", "sync"):
        if name not in table:
            raise ConfigError(file, name, f"required section [{name}] is missing")
    agent = build(AgentSettings, table["agent"], "agent", file, base)
    outbox = build(OutboxSettings, table.get("outbox", {}), "outbox", file, base)
    sync = build(SyncSettings, table["sync"], "sync", file, base)
    health = build(HealthSettings, table.get("health", {}), "health", file, base)
    devices = tuple(_devices(table.get("devices", []), file, base))
    stations = tuple(
        build(StationSettings, t, f"stations[{i}]", file, base)
        for i, t in enumerate(_array_of_tables(table.get("stations", []), "stations", file))
    )
    record = build(RecordSettings, table.get("record", {}), "record", file, base)
    try:
        identify = build(IdentifySettings, table.get("identify", {}), "identify", file, base)
    except ValueError as exc:  # its own checks (a pattern that does not compile...)
        raise ConfigError(file, "identify", str(exc)) from exc
    _cross_check(devices, stations, file)
    for i, st in enumerate(stations):
        _check_station(st, f"stations[{i}]", file)
    return Config(Path(file), agent, outbox, sync, health, devices, stations, record, identify)


def _devices(value: Any, file: str, base: Path) -> list[DeviceSettings]:
    from drivers import DRIVERS

    out = []
    for i, t in enumerate(_array_of_tables(value, "devices", file)):
        where = f"devices[{i}]"
        t = dict(t)
        dev_id = t.pop("id", None)
        driver = t.pop("driver", None)
        if not isinstance(dev_id, str) or not _ID_RE.match(dev_id):
            raise ConfigError(file, f"{where}.id", "a device id: letters, digits, . _ : -")
        if not isinstance(driver, str) or driver not in DRIVERS:
            raise ConfigError(
                file, f"{where}.driver", f"one of {', '.join(sorted(DRIVERS))}, got {driver!r}"
            )
        options = build(DRIVERS[driver].Settings, t, where, file, base)
        out.append(DeviceSettings(dev_id, driver, options))
    return out


def _cross_check(
    devices: tuple[DeviceSettings, ...], stations: tuple[StationSettings, ...], file: str
) -> None:
    ids = [d.id for d in devices]
    for i, dev_id in enumerate(ids):
        if dev_id in ids[:i]:
            raise ConfigError(file, f"devices[{i}].id", f"a unique id; {dev_id!r} is used twice")
    names: list[str] = []
    bound: dict[str, str] = {}
    for i, st in enumerate(stations):
        if st.name in names:
            raise ConfigError(
                file, f"stations[{i}].name", f"a unique name; {st.name!r} is used twice"
            )
        names.append(st.name)
        for dev_id in st.devices:
            if dev_id not in ids:
                raise ConfigError(
                    file, f"stations[{i}].devices", f"ids from [[devices]]; {dev_id!r} is not one"
                )
            if dev_id in bound:
                raise ConfigError(
                    file,
                    f"stations[{i}].devices",
                    f"each device in one station; {dev_id!r} is already in {bound[dev_id]!r}",
                )
            bound[dev_id] = st.name


_NEEDS_LOCATION = ("receiving", "shipping", "returns")
_ONLY_FOR = {
    "staging": ("putaway",),
    "quarantine_location": ("returns",),
    "asn_file": ("receiving",),
}


def _check_station(st: StationSettings, where: str, file: str) -> None:
    """What each station kind needs, and keys that mean nothing for its kind."""
    if st.kind in _NEEDS_LOCATION and not st.location:
        raise ConfigError(file, f"{where}.location", f"required for a {st.kind} station")
    if st.kind == "putaway":
        if not st.staging:
            raise ConfigError(
                file, f"{where}.staging", "required for a putaway station (where items come from)"
            )
        if st.location:
            raise ConfigError(
                file,
                f"{where}.location",
                "not used by a putaway station: items go from `staging` to the scanned location",
            )
    for key, kinds in _ONLY_FOR.items():
        if getattr(st, key) is not None and st.kind not in kinds:
            raise ConfigError(
                file, f"{where}.{key}", f"only for a {' or '.join(kinds)} station, not {st.kind}"
            )
    if st.disposition != "restock" and st.kind != "returns":
        raise ConfigError(
            file, f"{where}.disposition", f"only for a returns station, not {st.kind}"
        )
    if st.asn_file is not None:
        from agent.rules.asn import AsnError, load_asn

        try:
            load_asn(st.asn_file)
        except AsnError as exc:
            raise ConfigError(file, f"{where}.asn_file", str(exc)) from exc


def _array_of_tables(value: Any, key: str, file: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise ConfigError(file, key, f"an array of tables ([[{key}]])")
    return value


def _no_unknown(table: Any, known: Any, where: str, file: str) -> None:
    if not isinstance(table, dict):
        raise ConfigError(file, where, "a table")
    for key in table:
        if key not in known:
            path = f"{where}.{key}" if where else key
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                file, path, f"an unknown key{hint}; expected one of: {', '.join(known)}"
            )


def build(cls: type[T], table: Any, where: str, file: str, base: Path) -> T:
    """Make settings dataclass ``cls`` from a TOML table, checking every key and value."""
    hints = typing.get_type_hints(cls)
    specs = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    _no_unknown(table, specs, where, file)
    values: dict[str, Any] = {}
    for name, spec in specs.items():
        key = f"{where}.{name}"
        if name not in table:
            if spec.default is MISSING and spec.default_factory is MISSING:
                raise ConfigError(file, key, f"required: {spec.metadata.get('help', name)}")
            continue
        values[name] = _convert(table[name], hints[name], dict(spec.metadata), key, file, base)
    try:
        out = cls(**values)
    except ValueError as exc:  # a settings class's own cross-field check (__post_init__)
        raise ConfigError(file, where, str(exc)) from exc
    # A settings class may name the key a cross-key problem is about: check() -> [(key, expected)]
    check = getattr(out, "check", None)
    if callable(check):
        for key, expected in check():
            raise ConfigError(file, f"{where}.{key}", expected)
    return out


def _convert(value: Any, tp: Any, meta: dict[str, Any], key: str, file: str, base: Path) -> Any:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(value, inner[0], meta, key, file, base)
    if origin is Literal:
        options = typing.get_args(tp)
        if value not in options:
            raise ConfigError(file, key, f"one of {', '.join(map(repr, options))}, got {value!r}")
        return value
    if origin is list:
        (element,) = typing.get_args(tp)
        if element is int:
            if not isinstance(value, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value
            ):
                raise ConfigError(file, key, f"a list of integers, got {value!r}")
            for v in value:
                if "minimum" in meta and v < meta["minimum"]:
                    raise ConfigError(file, key, f"integers of at least {meta['minimum']}, got {v}")
                if "maximum" in meta and v > meta["maximum"]:
                    raise ConfigError(file, key, f"integers of at most {meta['maximum']}, got {v}")
            return list(value)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(file, key, "a list of strings")
        return list(value)
    if tp is Size:
        out: Any = _size(value, key, file)
    elif tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(file, key, f"true or false, got {value!r}")
        return value
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(file, key, f"an integer, got {value!r}")
        out = value
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(file, key, f"a number, got {value!r}")
        try:
            out = float(value)
        except OverflowError:
            out = math.inf
        if not math.isfinite(out):
            at_least = f" at least {meta['minimum']}" if "minimum" in meta else ""
            raise ConfigError(file, key, f"a finite number{at_least}, got {value!r}")
    elif tp is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(file, key, f"a path, got {value!r}")
        if meta.get("late_env") and _VAR_RE.search(value):
            return Path(value)  # expanded where it is read: the variable exists only there
        value = _expand(value, file, key)
        if meta.get("under_state_dir"):
            return Path(value).expanduser()  # joined to agent.state_dir, not the config's folder
        return base / Path(value).expanduser()
    elif tp is str:
        if not isinstance(value, str) or not (value or meta.get("listen")):
            raise ConfigError(file, key, f"a non-empty string, got {value!r}")
        if meta.get("id") and not _ID_RE.match(value):
            raise ConfigError(file, key, f"letters, digits, . _ : - (at most 64), got {value!r}")
        if meta.get("listen") and value:
            parse_listen(value, file, key)
        if meta.get("url"):
            try:
                parts = urlsplit(value)
                parts.port  # noqa: B018 - raises ValueError for a port that is not a number
            except ValueError as exc:
                raise ConfigError(
                    file, key, f"an http:// or https:// URL, got {value!r} ({exc})"
                ) from exc
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(file, key, f"an http:// or https:// URL, got {value!r}")
        return value
    else:  # pragma: no cover - a settings class used a type this loader lacks
        raise TypeError(f"no config conversion for {tp!r}")
    if "minimum" in meta and out < meta["minimum"]:
        raise ConfigError(file, key, f"at least {meta['minimum']}, got {value!r}")
    if "maximum" in meta and out > meta["maximum"]:
        raise ConfigError(file, key, f"at most {meta['maximum']}, got {value!r}")
    return out


_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand(value: str, file: str, key: str) -> str:
    """``${NAME}`` from the environment: systemd's ${CREDENTIALS_DIRECTORY} above all."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in os.environ:
            hint = (
                " (set by systemd for a unit with LoadCredential=)"
                if name == "CREDENTIALS_DIRECTORY"
                else ""
            )
            raise ConfigError(file, key, f"${{{name}}} to be set in the environment{hint}")
        return os.environ[name]

    return _VAR_RE.sub(one, value)


def parse_listen(value: str, file: str = "", key: str = "health.listen") -> tuple[str, int]:
    """``host:port`` (``[::1]:port`` for IPv6) as (host, port)."""
    host, sep, port = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ConfigError(
            file, key, f"host:port such as 127.0.0.1:8711 (port 0: any free one), got {value!r}"
        )
    return host, int(port)


def _size(value: Any, key: str, file: str) -> Size:
    if isinstance(value, int) and not isinstance(value, bool):
        return Size(value)
    if isinstance(value, str) and (m := _SIZE_RE.match(value)):
        unit = m.group(2).lower()
        binary = "i" in unit
        prefix = unit[:1] if unit[:1] in "kmgt" else ""
        mult = 1024 ** " kmgt".index(prefix) if binary and prefix else _UNITS[prefix]
        size = float(m.group(1)) * mult
        if math.isfinite(size) and size < 2**62:
            return Size(int(size))
    raise ConfigError(
        file, key, f'a size in bytes such as 536870912, "512MB" or "1GiB", got {value!r}'
    )


def token_path(config: Config) -> Path:
    """sync.token_file with ${VARS} expanded now (systemd sets CREDENTIALS_DIRECTORY at run time)."""
    raw = str(config.sync.token_file)
    path = Path(_expand(raw, str(config.file), "sync.token_file"))
    return path if path.is_absolute() else config.file.parent / path


def read_token(config: Config) -> str:
    """Read the bearer token from its file; the error never shows the token."""
    path = token_path(config)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(
            str(config.file),
            "sync.token_file",
            f"a readable file holding the token; {path}: {reason}",
        ) from exc
    if not token or any(c.isspace() for c in token) or not token.isprintable():
        raise ConfigError(
            str(config.file), "sync.token_file", f"{path} to hold one token on one line"
        )
    return token


def settings_help(cls: type[Any]) -> list[tuple[str, str, str]]:
    """(name, default as TOML, help) rows, for the README's settings table."""
    rows = []
    for f in fields(cls):
        if f.default is MISSING and f.default_factory is MISSING:
            default = "required"
        elif f.default is MISSING:
            default = repr(f.default_factory())  # type: ignore[operator]
        elif f.default is None:
            default = "unset"
        elif isinstance(f.default, bool):
            default = str(f.default).lower()
        elif isinstance(f.default, str | Path):
            default = f'"{f.default}"'
        else:
            default = repr(f.default)
        rows.append((f.name, default, str(f.metadata.get("help", ""))))
    return rows


def settings_table() -> str:
    """The Markdown table of every setting, as the README shows it (a test keeps them equal)."""
    from drivers import DRIVERS

    sections: list[tuple[str, type[Any], str | None]] = [
        ("[agent]", AgentSettings, None),
        ("[outbox]", OutboxSettings, None),
        ("[sync]", SyncSettings, None),
        ("[health]", HealthSettings, None),
        ("[[stations]]", StationSettings, None),
        ("[record]", RecordSettings, None),
        ("[identify]", IdentifySettings, None),
    ]
    sections += [
        (f'[[devices]] driver = "{name}"', DRIVERS[name].Settings, name) for name in sorted(DRIVERS)
    ]
    lines = ["| key | default | what it is |", "|---|---|---|"]
    for title, cls, driver in sections:
        lines.append(f"| **`{title}`** | | |")
        if driver is not None:
            lines.append("| `id` | `required` | device id; stations name their devices by it |")
            lines.append(f"| `driver` | `required` | the kind of device: `{driver}` |")
        lines.extend(f"| `{n}` | `{d}` | {h} |" for n, d, h in settings_help(cls))
    return "\n".join(lines)
