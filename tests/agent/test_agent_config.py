"""agent.config on real TOML files: every wrong key or value names file, key path and what
was expected; the token file's errors never show the token."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from agent.config import Config, load_config, parse_config, read_token
from agent.errors import ConfigError
from drivers import DRIVERS
from drivers.simulated import SimulatedSettings

VALID = """\
[agent]
id = "dock-3"
state_dir = "state"

[outbox]
max_bytes = "512MB"
retention_days = 7

[sync]
url = "http://127.0.0.1:8080"
token_file = "token"
batch_max = 200

[[devices]]
id = "scanner-1"
driver = "simulated"
script = "dock.jsonl"

[[devices]]
id = "scanner-2"
driver = "simulated"
script = "dock2.jsonl"
speed = 0

[[stations]]
name = "recv-1"
kind = "receiving"
location = "DOCK-3"
devices = ["scanner-1"]
"""

SECOND_STATION = """
[[stations]]
name = "recv-2"
kind = "receiving"
location = "DOCK-4"
devices = ["scanner-2"]
"""


def write(tmp_path: Path, text: str, name: str = "agent.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} must occur once in the template"
    return text.replace(old, new)


def test_valid_config_loads_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID))
    assert config.file == tmp_path / "agent.toml"
    assert config.agent.id == "dock-3"
    assert config.agent.state_dir == tmp_path / "state"
    assert config.agent.log_level == "info"
    assert config.outbox_path == tmp_path / "state" / "outbox.db"
    assert config.outbox.max_bytes == 512 * 10**6
    assert config.outbox.retention_days == 7.0
    assert isinstance(config.outbox.retention_days, float)
    assert config.sync.url == "http://127.0.0.1:8080"
    assert config.sync.token_file == tmp_path / "token"
    assert config.sync.batch_max == 200
    assert config.sync.batch_max_bytes == 1 << 20  # default
    assert config.sync.verify_tls is True
    assert [(d.id, d.driver) for d in config.devices] == [
        ("scanner-1", "simulated"),
        ("scanner-2", "simulated"),
    ]
    first, second = (d.options for d in config.devices)
    assert first == SimulatedSettings(script=tmp_path / "dock.jsonl")
    assert second == SimulatedSettings(script=tmp_path / "dock2.jsonl", speed=0.0)
    (station,) = config.stations
    assert (station.name, station.kind, station.location, station.devices) == (
        "recv-1",
        "receiving",
        "DOCK-3",
        ["scanner-1"],
    )


def test_minimal_config_takes_the_defaults(tmp_path: Path) -> None:
    text = '[agent]\nid = "a"\n[sync]\nurl = "https://ledger.example"\ntoken_file = "/etc/t"\n'
    config = load_config(write(tmp_path, text))
    assert config.outbox.max_bytes == 512 * 2**20
    assert config.outbox.retention_days == 30.0
    assert config.agent.state_dir == Path("/var/lib/edgetally")
    assert config.sync.token_file == Path("/etc/t")
    assert config.devices == ()
    assert config.stations == ()


def test_config_show_gives_plain_values_and_no_token(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("Zq9xK7pW3mV8\n")
    config = load_config(write(tmp_path, VALID))
    shown = config.shown()
    assert shown["sync"]["token_file"] == str(tmp_path / "token")
    assert shown["devices"][1] == {
        "id": "scanner-2",
        "driver": "simulated",
        "script": str(tmp_path / "dock2.jsonl"),
        "speed": 0.0,
        "repeat": False,
        "ack_log": None,
    }
    assert "Zq9xK7pW3mV8" not in repr(shown)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ('"512MB"', 512 * 10**6),
        ('"1GiB"', 2**30),
        ("1048576", 1048576),
        ('"512MiB"', 512 * 2**20),
        ('"2 GB"', 2 * 10**9),
        ('"1.5MiB"', 1_572_864),
        ('"64mib"', 64 * 2**20),
        ('"2000000"', 2_000_000),
        ('"3000000B"', 3_000_000),
    ],
)
def test_sizes(tmp_path: Path, written: str, expected: int) -> None:
    text = replace_once(VALID, 'max_bytes = "512MB"', f"max_bytes = {written}")
    assert load_config(write(tmp_path, text)).outbox.max_bytes == expected


# (old text, new text, key path, what the message must say was expected)
BAD: list[tuple[str, str, str, str]] = [
    (
        "batch_max = 200",
        "batch_maxx = 200",
        "sync.batch_maxx",
        "an unknown key (did you mean 'batch_max'?)",
    ),
    ("batch_max = 200", 'batch_max = "many"', "sync.batch_max", "an integer, got 'many'"),
    ("batch_max = 200", "batch_max = 2.5", "sync.batch_max", "an integer, got 2.5"),
    ("batch_max = 200", "batch_max = true", "sync.batch_max", "an integer, got True"),
    ("batch_max = 200", "batch_max = 0", "sync.batch_max", "at least 1, got 0"),
    ("batch_max = 200", "batch_max = 10001", "sync.batch_max", "at most 10000, got 10001"),
    ("batch_max = 200", "timeout_s = 0", "sync.timeout_s", "at least 0.1, got 0"),
    ("batch_max = 200", 'verify_tls = "yes"', "sync.verify_tls", "true or false, got 'yes'"),
    (
        'url = "http://127.0.0.1:8080"',
        'url = "ftp://ledger.example"',
        "sync.url",
        "an http:// or https:// URL, got 'ftp://ledger.example'",
    ),
    (
        'url = "http://127.0.0.1:8080"',
        'url = "http://"',
        "sync.url",
        "an http:// or https:// URL",
    ),
    ('url = "http://127.0.0.1:8080"', 'url = ""', "sync.url", "a non-empty string"),
    (
        'url = "http://127.0.0.1:8080"',
        'url = "http://[::1"',
        "sync.url",
        "an http:// or https:// URL",
    ),
    (
        'url = "http://127.0.0.1:8080"',
        'url = "http://ledger:port"',
        "sync.url",
        "an http:// or https:// URL",
    ),
    ("batch_max = 200", "timeout_s = nan", "sync.timeout_s", "at least 0.1"),
    ("batch_max = 200", "stall_alarm_s = nan", "sync.stall_alarm_s", "at least 1"),
    ('url = "http://127.0.0.1:8080"', "", "sync.url", "required: base URL of the ledger"),
    ('token_file = "token"', "", "sync.token_file", "required: file holding"),
    (
        'max_bytes = "512MB"',
        'max_bytes = "lots"',
        "outbox.max_bytes",
        'a size in bytes such as 536870912, "512MB" or "1GiB", got \'lots\'',
    ),
    (
        'max_bytes = "512MB"',
        'max_bytes = "512 parsecs"',
        "outbox.max_bytes",
        "a size in bytes",
    ),
    ('max_bytes = "512MB"', "max_bytes = 1.5e9", "outbox.max_bytes", "a size in bytes"),
    (
        'max_bytes = "512MB"',
        f'max_bytes = "{"9" * 400}TB"',
        "outbox.max_bytes",
        "a size in bytes",
    ),
    ('max_bytes = "512MB"', "max_bytes = true", "outbox.max_bytes", "a size in bytes"),
    (
        'max_bytes = "512MB"',
        'max_bytes = "512KB"',
        "outbox.max_bytes",
        "at least 1048576, got '512KB'",
    ),
    ('max_bytes = "512MB"', "max_bytes = -5", "outbox.max_bytes", "at least 1048576"),
    (
        "retention_days = 7",
        "retention_days = -1",
        "outbox.retention_days",
        "at least 0, got -1",
    ),
    ('id = "dock-3"', 'id = "dock 3"', "agent.id", "letters, digits, . _ : -"),
    ('id = "dock-3"', "", "agent.id", "required: this agent's id"),
    (
        'state_dir = "state"',
        'log_level = "verbose"',
        "agent.log_level",
        "one of 'debug', 'info', 'warning', 'error', got 'verbose'",
    ),
    ("[sync]", "[synk]", "synk", "an unknown key (did you mean 'sync'?)"),
    (
        'driver = "simulated"\nscript = "dock.jsonl"',
        'driver = "laser"\nscript = "dock.jsonl"',
        "devices[0].driver",
        f"one of {', '.join(sorted(DRIVERS))}, got 'laser'",
    ),
    (
        'driver = "simulated"\nscript = "dock.jsonl"',
        'driver = ["simulated"]\nscript = "dock.jsonl"',
        "devices[0].driver",
        f"one of {', '.join(sorted(DRIVERS))}",
    ),
    (
        'script = "dock.jsonl"',
        'script = "dock.jsonl"\nspeed = "fast"',
        "devices[0].speed",
        "a number, got 'fast'",
    ),
    (
        "speed = 0",
        "speed = -1",
        "devices[1].speed",
        "at least 0, got -1",
    ),
    (
        'script = "dock.jsonl"',
        'script = "dock.jsonl"\nspeeed = 2',
        "devices[0].speeed",
        "an unknown key (did you mean 'speed'?)",
    ),
    ('script = "dock.jsonl"', "", "devices[0].script", "required: JSON lines file"),
    ('id = "scanner-2"', 'id = "scanner-1"', "devices[1].id", "'scanner-1' is used twice"),
    ('id = "scanner-2"', 'id = "scanner 2"', "devices[1].id", "a device id"),
    (
        'devices = ["scanner-1"]',
        'devices = ["scanner-9"]',
        "stations[0].devices",
        "ids from [[devices]]; 'scanner-9' is not one",
    ),
    (
        'devices = ["scanner-1"]',
        'devices = "scanner-1"',
        "stations[0].devices",
        "a list of strings",
    ),
    (
        'kind = "receiving"',
        'kind = "teleport"',
        "stations[0].kind",
        "one of 'receiving', 'shipping', 'returns', 'putaway', 'count', 'portal', 'zone', got 'teleport'",
    ),
    ('location = "DOCK-3"', "", "stations[0].location", "required"),
]


@pytest.mark.parametrize(
    ("old", "new", "key", "expected"), BAD, ids=[f"{k}:{n[:20]}" for _, n, k, _ in BAD]
)
def test_bad_config_names_file_key_and_expectation(
    tmp_path: Path, old: str, new: str, key: str, expected: str
) -> None:
    path = write(tmp_path, replace_once(VALID, old, new))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert err.file == str(path)
    assert err.key == key
    assert expected in err.expected
    assert str(err) == f"{path}: {key}: {err.expected}"


# ---- fuzzed values: a ConfigError, never a crash (DESIGN §8) -----------------------------

_KEYS: list[tuple[str | int, ...]] = [
    ("agent", "id"),
    ("agent", "state_dir"),
    ("agent", "log_level"),
    ("agent", "nonsense"),
    ("outbox", "path"),
    ("outbox", "max_bytes"),
    ("outbox", "retention_days"),
    ("outbox", "group_max"),
    ("sync", "url"),
    ("sync", "token_file"),
    ("sync", "batch_max"),
    ("sync", "batch_max_bytes"),
    ("sync", "timeout_s"),
    ("sync", "verify_tls"),
    ("sync", "ca_file"),
    ("devices", 0, "id"),
    ("devices", 0, "driver"),
    ("devices", 0, "script"),
    ("devices", 0, "speed"),
    ("devices", 0, "ack_log"),
    ("stations", 0, "name"),
    ("stations", 0, "kind"),
    ("stations", 0, "devices"),
    ("agent",),
    ("devices",),
    ("stations",),
]
_scalars = (
    st.text(max_size=30)
    | st.from_regex(r"\A\s*\d{1,400}(\.\d{1,5})?\s*[kKmMgGtT]?i?[bB]?\s*\Z")
    | st.sampled_from(["http://[::1", "http://x:port", "https://ledger", "receiving", "simulated"])
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats()
    | st.booleans()
    | st.datetimes()
    | st.dates()
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@example(key=("sync", "url"), value="http://[::1")
@example(key=("outbox", "max_bytes"), value="9" * 400 + "TB")
@example(key=("sync", "batch_max_bytes"), value="1" * 320 + "GiB")
@example(key=("devices", 0, "driver"), value=["simulated"])
@given(key=st.sampled_from(_KEYS), value=_values)
def test_any_value_for_any_key_is_accepted_or_a_config_error(
    key: tuple[str | int, ...], value: Any
) -> None:
    table = tomllib.loads(VALID)
    where: Any = table
    for part in key[:-1]:
        where = where[part]
    where[key[-1]] = value
    try:
        parse_config(table, file="agent.toml", base=Path("/etc/edgetally"))
    except ConfigError as exc:
        assert str(exc).startswith("agent.toml: ")


def test_missing_section_is_named(tmp_path: Path) -> None:
    text = VALID.split("[sync]")[0] + "[[devices]]" + VALID.split("[[devices]]", 1)[1]
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == "sync"
    assert "required section [sync] is missing" in str(info.value)
    assert str(path) in str(info.value)


def test_section_that_is_not_a_table(tmp_path: Path) -> None:
    text = "outbox = 5\n" + replace_once(
        VALID, '[outbox]\nmax_bytes = "512MB"\nretention_days = 7\n', ""
    )
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert (info.value.key, info.value.expected) == ("outbox", "a table")


def test_devices_that_are_not_an_array_of_tables(tmp_path: Path) -> None:
    text = 'devices = "scanner-1"\n[agent]\nid = "a"\n[sync]\nurl = "http://l"\ntoken_file = "t"\n'
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert info.value.key == "devices"
    assert "an array of tables ([[devices]])" in str(info.value)


def test_device_in_two_stations(tmp_path: Path) -> None:
    text = VALID + SECOND_STATION.replace('devices = ["scanner-2"]', 'devices = ["scanner-1"]')
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == "stations[1].devices"
    assert "each device in one station; 'scanner-1' is already in 'recv-1'" in str(info.value)
    assert str(path) in str(info.value)


def test_two_stations_with_their_own_devices_are_fine(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID + SECOND_STATION))
    assert [s.devices for s in config.stations] == [["scanner-1"], ["scanner-2"]]


def test_station_names_are_unique(tmp_path: Path) -> None:
    text = VALID + SECOND_STATION.replace('"recv-2"', '"recv-1"')
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert info.value.key == "stations[1].name"
    assert "'recv-1' is used twice" in str(info.value)


def test_invalid_toml(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace('id = "dock-3"', 'id = "dock-3'))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.file == str(path)
    assert info.value.key == ""
    assert info.value.expected.startswith("not valid TOML: ")
    assert "line 2" in str(info.value)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_bytes(VALID.encode() + b"# \xff\xfe\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: expected UTF-8 text"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.file == str(path)
    assert "cannot read the config file (No such file or directory)" in str(info.value)


# ---- the token file -------------------------------------------------------------------


def config_with_token(tmp_path: Path) -> Config:
    return load_config(write(tmp_path, VALID))


def test_token_is_read_and_stripped(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("  Zq9xK7pW3mV8\n")
    (tmp_path / "token").chmod(0o600)
    assert read_token(config_with_token(tmp_path)) == "Zq9xK7pW3mV8"


@pytest.mark.parametrize(
    ("mode", "who"),
    [(0o644, "its group and others"), (0o604, "others"), (0o640, "its group")],
)
def test_a_token_others_can_read_is_refused_with_the_chmod_to_run(
    tmp_path: Path, mode: int, who: str
) -> None:
    token = tmp_path / "token"
    token.write_text("Zq9xK7pW3mV8\n")
    token.chmod(mode)
    with pytest.raises(ConfigError) as err:
        read_token(config_with_token(tmp_path))
    assert err.value.key == "sync.token_file"
    assert f"has mode {mode:04o}, readable by {who}" in str(err.value)
    assert f"run `chmod 600 {token}`" in str(err.value)
    assert "Zq9xK7pW3mV8" not in str(err.value)
    token.chmod(0o400)  # read-only for its owner is fine (systemd's credentials are 0400)
    assert read_token(config_with_token(tmp_path)) == "Zq9xK7pW3mV8"


def test_missing_token_file(tmp_path: Path) -> None:
    config = config_with_token(tmp_path)
    with pytest.raises(ConfigError) as info:
        read_token(config)
    assert info.value.key == "sync.token_file"
    assert info.value.file == str(config.file)
    assert str(tmp_path / "token") in str(info.value)
    assert "No such file or directory" in str(info.value)


@pytest.mark.parametrize(
    ("content", "secret_parts"),
    [
        (b"", []),
        (b"   \n\n", []),
        (b"Zq9xK7 pW3mV8\n", [b"Zq9xK7", b"pW3mV8"]),
        (b"Zq9xK7pW3mV8\nSecondLine42\n", [b"Zq9xK7pW3mV8", b"SecondLine42"]),
        (b"Zq9xK7\x07pW3mV8", [b"Zq9xK7", b"pW3mV8"]),
        (b"Zq9xK7\xffpW3mV8", [b"Zq9xK7", b"pW3mV8"]),
    ],
    ids=["empty", "blank", "space", "two-lines", "control-char", "not-utf8"],
)
def test_bad_token_file_is_named_and_never_shown(
    tmp_path: Path, content: bytes, secret_parts: list[bytes]
) -> None:
    (tmp_path / "token").write_bytes(content)
    config = config_with_token(tmp_path)
    with pytest.raises(ConfigError) as info:
        read_token(config)
    message = str(info.value)
    assert info.value.key == "sync.token_file"
    assert message.startswith(f"{config.file}: sync.token_file: ")
    assert str(tmp_path / "token") in message
    for part in secret_parts:
        assert part.decode() not in message
