"""The TOML loader: every key and value is checked against the settings' types.

Unknown keys and wrong types are rejected at start-up with a ConfigError
naming the file, the key path and what was expected.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
import types
import typing
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from agent.config.meta import Size
from agent.config.settings import (
    AgentSettings,
    Config,
    DeviceSettings,
    HealthSettings,
    OutboxSettings,
    RecordSettings,
    SyncSettings,
)
from agent.config.sinks import (
    DELIVERY_KEYS,
    SINK_SETTINGS,
    HttpLedgerSinkSettings,
    SinkSettings,
)
from agent.config.stations import StationSettings, _check_station
from agent.errors import ConfigError
from agent.identify.settings import IdentifySettings
from agent.urls import redacted

T = TypeVar("T")
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
ID_RULE = "letters, digits, . _ : - (at most 64)"


def valid_id(value: str) -> bool:
    """Whether ``value`` is an id as agent.id and devices[].id take (the ledger CLI asks)."""
    return bool(_ID_RE.match(value))


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
    sync_table = table["sync"]
    sink_tables = None
    if isinstance(sync_table, dict) and isinstance(sync_table.get("sink"), list):
        sync_table = dict(sync_table)
        sink_tables = _array_of_tables(sync_table.pop("sink"), "sync.sink", file)
    sync = build(SyncSettings, sync_table, "sync", file, base)
    sinks = _sinks(sync, sync_table, sink_tables, file, base)
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
    return Config(
        Path(file), agent, outbox, sync, health, devices, stations, record, identify, sinks
    )


def _sinks(
    sync: SyncSettings,
    sync_table: dict[str, Any],
    tables: list[dict[str, Any]] | None,
    file: str,
    base: Path,
) -> tuple[SinkSettings, ...]:
    """[sync]'s url as the http-ledger sink ``ledger`` (as before several sinks), then
    each [[sync.sink]]; the delivery keys set in [sync] are every sink's defaults."""
    shared = {k: sync_table[k] for k in DELIVERY_KEYS if k in sync_table}
    out: list[SinkSettings] = []
    if sync.url is not None or not tables:
        for key in ("url", "token_file"):
            if getattr(sync, key) is None:
                spec = next(f for f in fields(SyncSettings) if f.name == key)
                raise ConfigError(file, f"sync.{key}", f"required: {spec.metadata['help']}")
        assert sync.url is not None and sync.token_file is not None
        legacy = HttpLedgerSinkSettings(
            url=sync.url,
            token_file=sync.token_file,
            verify_tls=sync.verify_tls,
            ca_file=sync.ca_file,
            **{k: getattr(sync, k) for k in DELIVERY_KEYS},
        )
        out.append(SinkSettings("ledger", "http-ledger", legacy, "sync"))
    elif sync.token_file is not None:
        raise ConfigError(file, "sync.token_file", "only with sync.url (the `ledger` sink)")
    for i, t in enumerate(tables or []):
        where = f"sync.sink[{i}]"
        t = dict(t)
        name, kind = t.pop("name", None), t.pop("type", None)
        if not isinstance(name, str) or not _ID_RE.match(name):
            raise ConfigError(file, f"{where}.name", f"a sink name: {ID_RULE}, got {name!r}")
        if not isinstance(kind, str) or kind not in SINK_SETTINGS:
            close = difflib.get_close_matches(str(kind), list(SINK_SETTINGS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                file, f"{where}.type", f"one of {', '.join(SINK_SETTINGS)}, got {kind!r}{hint}"
            )
        taken = [s.name for s in out]
        if name in taken:
            why = (
                " ([sync] url is the sink `ledger`)"
                if name == "ledger" and out[0].where == "sync"
                else ""
            )
            raise ConfigError(
                file, f"{where}.name", f"a unique sink name; {name!r} is used twice{why}"
            )
        options = build(SINK_SETTINGS[kind], {**shared, **t}, where, file, base)
        out.append(SinkSettings(name, kind, options, where))
    return tuple(out)


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
        beam = st.beam
        if beam is not None:
            device, port = beam
            options = next((d.options for d in devices if d.id == device), None)
            if getattr(options, "gpi_port", None) != port:
                raise ConfigError(
                    file,
                    f"stations[{i}].beam_gpi",
                    f"the gpi_port of device {device!r} (an llrp reader reports only that "
                    f"GPI): set gpi_port = {port} there",
                )


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
    if origin is dict:
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in value.items()
        ):
            raise ConfigError(file, key, "a table of names to non-empty strings")
        return dict(value)
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
            raise ConfigError(file, key, f"{ID_RULE}, got {value!r}")
        if meta.get("listen") and value:
            parse_listen(value, file, key)
        if meta.get("url"):
            shown = redacted(value)  # a URL may hold a key in its query: never echoed
            try:
                parts = urlsplit(value)
                parts.port  # noqa: B018 - raises ValueError for a port that is not a number
            except ValueError as exc:
                raise ConfigError(
                    file, key, f"an http:// or https:// URL, got {shown!r} ({exc})"
                ) from exc
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(file, key, f"an http:// or https:// URL, got {shown!r}")
            if parts.username is not None or parts.password is not None:
                raise ConfigError(
                    file,
                    key,
                    f"a URL without a user or password in it, got {shown!r}: httpx would send "
                    "them instead of the agent's token, and URLs are shown in logs and status; "
                    "the token comes from sync.token_file",
                )
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
