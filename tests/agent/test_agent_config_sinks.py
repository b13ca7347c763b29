"""[[sync.sink]] tables on real TOML files: [sync]'s url stays the http-ledger sink
`ledger`, each table is checked against its type's settings with the loader's errors
(file, key path, expected, did you mean), names are unique, secrets are read from
their own files."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_config, read_secrets
from agent.config.sinks import (
    DELIVERY_KEYS,
    EpcisSinkConfig,
    HttpLedgerSinkSettings,
    MqttSinkSettings,
    TrytonSinkSettings,
)
from agent.errors import ConfigError
from tests.agent.test_agent_config import VALID, replace_once, write

MQTT = """
[[sync.sink]]
name = "bus"
type = "mqtt"
host = "127.0.0.1"
port = 18830
"""

TRYTON = """
[[sync.sink]]
name = "erp"
type = "tryton"
url = "http://127.0.0.1:8000"
database = "wh"
login = "agent"
password_file = "tryton-password"
batch_max = 50

[sync.sink.locations]
"DOCK-3" = "STOR"
"""

EPCIS = """
[[sync.sink]]
name = "trace"
type = "epcis"
url = "http://127.0.0.1:8080/epcis"
token_file = "epcis-token"
timezone = "Europe/Paris"
default_read_point = "urn:epc:id:sgln:9506000.13435.0"
poll_timeout_s = 5

[sync.sink.stations]
"dock-3" = "urn:epc:id:sgln:9506000.13435.3"
"""


def test_sync_url_alone_is_one_http_ledger_sink_named_ledger(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, VALID))
    (sink,) = cfg.sinks
    assert (sink.name, sink.type, sink.where) == ("ledger", "http-ledger", "sync")
    assert isinstance(sink.options, HttpLedgerSinkSettings)
    assert sink.options.url == "http://127.0.0.1:8080"
    assert sink.options.token_file == tmp_path / "token"
    assert sink.options.batch_max == 200  # [sync]'s


def test_sink_tables_come_after_the_ledger_and_take_syncs_delivery_keys(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, VALID + MQTT + TRYTON))
    assert [(s.name, s.type, s.where) for s in cfg.sinks] == [
        ("ledger", "http-ledger", "sync"),
        ("bus", "mqtt", "sync.sink[0]"),
        ("erp", "tryton", "sync.sink[1]"),
    ]
    bus, erp = cfg.sinks[1].options, cfg.sinks[2].options
    assert isinstance(bus, MqttSinkSettings) and isinstance(erp, TrytonSinkSettings)
    assert (bus.host, bus.port, bus.batch_max, bus.topic_prefix) == (
        "127.0.0.1",
        18830,
        200,
        "edgetally",
    )
    assert erp.batch_max == 50  # its own beats [sync]'s
    assert erp.locations == {"DOCK-3": "STOR"}
    assert erp.password_file == tmp_path / "tryton-password"
    shown = cfg.shown()["sync"]["sinks"]
    assert [s["name"] for s in shown] == ["ledger", "bus", "erp"]
    assert shown[2]["password_file"] == str(tmp_path / "tryton-password")  # the path, never read


# A value for each delivery key that no sink has by default
DELIVERY = {
    "batch_max": 42,
    "batch_max_bytes": 4096,
    "timeout_s": 7.5,
    "backoff_initial_s": 0.25,
    "backoff_cap_s": 9.0,
    "auth_retry_s": 11.0,
    "stall_alarm_s": 99.0,
}


def test_every_delivery_key_of_sync_is_every_sinks_default_and_shown(tmp_path: Path) -> None:
    assert set(DELIVERY) == set(DELIVERY_KEYS)  # a new delivery key belongs here too
    lines = "".join(f"{k} = {v}\n" for k, v in DELIVERY.items() if k != "batch_max")
    text = replace_once(VALID, "batch_max = 200\n", "batch_max = 42\n" + lines)
    cfg = load_config(write(tmp_path, text + MQTT + EPCIS))
    assert [s.name for s in cfg.sinks] == ["ledger", "bus", "trace"]
    for sink in cfg.sinks:
        got = {k: getattr(sink.options, k) for k in DELIVERY}
        assert got == DELIVERY, sink.name
    shown = cfg.shown()["sync"]
    assert {k: shown[k] for k in DELIVERY} == DELIVERY
    assert shown["url"] == "http://127.0.0.1:8080" and shown["sink"] == "http-ledger"
    for sink_shown in shown["sinks"]:
        assert {k: sink_shown[k] for k in DELIVERY} == DELIVERY, sink_shown["name"]


def test_sink_tables_alone_need_no_url(tmp_path: Path) -> None:
    text = replace_once(VALID, 'url = "http://127.0.0.1:8080"\ntoken_file = "token"\n', "")
    cfg = load_config(write(tmp_path, text + MQTT))
    assert [s.name for s in cfg.sinks] == ["bus"]
    assert cfg.sync.url is None


@pytest.mark.parametrize(
    ("table", "key", "expected"),
    [
        ('name = "bus"\ntype = "mqqt"\nhost = "h"', "sync.sink[0].type", "did you mean 'mqtt'?"),
        ('name = "bus"\ntype = "mqtt"\nhots = "h"', "sync.sink[0].hots", "did you mean 'host'?"),
        ('name = "bus"\ntype = "mqtt"', "sync.sink[0].host", "required: the MQTT broker's host"),
        ('name = "bus"\ntype = "mqtt"\nhost = "h"\nport = 0', "sync.sink[0].port", "at least 1"),
        ('name = "b us"\ntype = "mqtt"\nhost = "h"', "sync.sink[0].name", "a sink name"),
        ('type = "mqtt"\nhost = "h"', "sync.sink[0].name", "a sink name"),
        ('name = "ledger"\ntype = "mqtt"\nhost = "h"', "sync.sink[0].name", "is the sink `ledger`"),
        (
            'name = "erp"\ntype = "tryton"\nurl = "ftp://x"\ndatabase = "d"\nlogin = "l"\n'
            'password_file = "p"',
            "sync.sink[0].url",
            "an http:// or https:// URL",
        ),
        (
            'name = "erp"\ntype = "tryton"\nurl = "http://x"\ndatabase = "d"\nlogin = "l"\n'
            'password_file = "p"\nlocations = {"A" = 1}',
            "sync.sink[0].locations",
            "a table of names to non-empty strings",
        ),
    ],
)
def test_a_wrong_sink_table_names_file_key_and_what_was_expected(
    tmp_path: Path, table: str, key: str, expected: str
) -> None:
    path = write(tmp_path, VALID + "\n[[sync.sink]]\n" + table + "\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.file == str(path)
    assert err.value.key == key
    assert expected in err.value.expected


def test_sink_names_are_unique(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, VALID + MQTT + MQTT.replace("18830", "1883")))
    assert (err.value.key, err.value.expected) == (
        "sync.sink[1].name",
        "a unique sink name; 'bus' is used twice",
    )


def test_no_url_and_no_sink_table_is_still_sync_url_required(tmp_path: Path) -> None:
    text = replace_once(VALID, 'url = "http://127.0.0.1:8080"\n', "")
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    assert err.value.key == "sync.url" and "required" in err.value.expected


def test_a_sinks_secret_is_read_from_its_own_file_and_must_be_private(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, VALID + TRYTON))
    secret = tmp_path / "tryton-password"
    secret.write_text("s3cret-Pw\n")
    secret.chmod(0o644)
    with pytest.raises(ConfigError) as err:
        read_secrets(cfg, cfg.sinks[1])
    assert err.value.key == "sync.sink[0].password_file" and "chmod 600" in err.value.expected
    secret.chmod(0o600)
    assert read_secrets(cfg, cfg.sinks[1]) == {"password_file": "s3cret-Pw"}
    secret.unlink()
    with pytest.raises(ConfigError) as err:
        read_secrets(cfg, cfg.sinks[1])
    assert "s3cret" not in str(err.value) and "a readable file holding the secret" in str(err.value)


def test_an_epcis_table_is_the_epcis_sink_with_its_places_and_token(tmp_path: Path) -> None:
    from agent.epcis import EpcisPlaces
    from agent.sync.epcis import EpcisSink
    from agent.sync.registry import SinkContext, describe, make_sink

    cfg = load_config(write(tmp_path, VALID + EPCIS))
    sink = cfg.sinks[1]
    assert (sink.name, sink.type, sink.where) == ("trace", "epcis", "sync.sink[0]")
    o = sink.options
    assert isinstance(o, EpcisSinkConfig)
    assert o.stations == {"dock-3": "urn:epc:id:sgln:9506000.13435.3"}
    assert (o.timezone, o.company_prefix_length, o.poll_timeout_s, o.poll_max_s) == (
        "Europe/Paris",
        7,
        5.0,
        2.0,
    )
    assert o.batch_max == 200  # [sync]'s delivery keys are its defaults too
    assert o.secret_files() == {"token_file": tmp_path / "epcis-token"}
    secret = tmp_path / "epcis-token"
    secret.write_text("epcis-tok\n")
    secret.chmod(0o600)
    secrets = read_secrets(cfg, sink)
    assert secrets == {"token_file": "epcis-tok"}
    made = make_sink(sink, SinkContext("dock-3", secrets, lambda: 0.0))
    assert isinstance(made, EpcisSink)
    assert made.url == "http://127.0.0.1:8080/epcis/capture"
    assert made.places == EpcisPlaces(
        stations={"dock-3": "urn:epc:id:sgln:9506000.13435.3"},
        default_read_point="urn:epc:id:sgln:9506000.13435.0",
        timezone="Europe/Paris",
    )
    assert made.settings.poll_timeout_s == 5.0
    assert describe(sink) == {"name": "trace", "type": "epcis", "to": o.url}


def test_an_epcis_table_without_a_token_file_has_no_secret(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, VALID + EPCIS.replace('token_file = "epcis-token"\n', "")))
    assert cfg.sinks[1].options.secret_files() == {}
    assert read_secrets(cfg, cfg.sinks[1]) == {}


@pytest.mark.parametrize(
    ("old", "new", "key", "expected"),
    [
        (
            '"urn:epc:id:sgln:9506000.13435.3"',
            '"urn:epc:id:sgtin:9506000.134352.1"',
            "sync.sink[0].stations.dock-3",
            "an SGLN URI, urn:epc:id:sgln:",
        ),
        (
            '"urn:epc:id:sgln:9506000.13435.3"',
            '"urn:epc:id:sgln:9506000.1343.3"',
            "sync.sink[0].stations.dock-3",
            "a valid SGLN URI; 'urn:epc:id:sgln:9506000.1343.3' is not one",
        ),
        (
            '"urn:epc:id:sgln:9506000.13435.0"',
            '"DOCK-3"',
            "sync.sink[0].default_read_point",
            "an SGLN URI",
        ),
        (
            '"Europe/Paris"',
            '"Europe/Atlantis"',
            "sync.sink[0].timezone",
            "an IANA time zone name (timezone 'Europe/Atlantis': not a known time zone)",
        ),
        (
            "poll_timeout_s = 5",
            "company_prefix_length = 13",
            "sync.sink[0].company_prefix_length",
            "at most 12",
        ),
        (
            '"urn:epc:id:sgln:9506000.13435.0"\n',
            '"urn:epc:id:sgln:9506000.13435.0"\ndefault_biz_location = "here"\n',
            "sync.sink[0].default_biz_location",
            "an SGLN URI",
        ),
        ('url = "http://127.0.0.1:8080/epcis"\n', "", "sync.sink[0].url", "required"),
        ('"http://127.0.0.1:8080/epcis"', '"ftp://127.0.0.1/epcis"', "sync.sink[0].url", "http"),
        ("poll_timeout_s = 5", "poll_max_s = 0", "sync.sink[0].poll_max_s", "at least 0.001"),
        ("poll_timeout_s = 5", "poll_timeout = 5", "sync.sink[0].poll_timeout", "poll_timeout_s"),
    ],
)
def test_a_bad_epcis_place_or_zone_names_file_key_and_what_was_expected(
    tmp_path: Path, old: str, new: str, key: str, expected: str
) -> None:
    path = write(tmp_path, VALID + replace_once(EPCIS, old, new))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.file == str(path)
    assert err.value.key == key
    assert expected in err.value.expected


def test_the_readme_epcis_example_is_what_the_loader_takes(tmp_path: Path) -> None:
    import re

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## EPCIS 2.0") :]
    block = re.search(r"```toml\n(.+?)```", section, re.S)
    assert block is not None and 'type = "epcis"' in block.group(1)
    cfg = load_config(write(tmp_path, VALID + block.group(1)))
    o = cfg.sinks[1].options
    assert isinstance(o, EpcisSinkConfig)
    assert o.stations == {"dock-7": "urn:epc:id:sgln:9506000.13435.7"}


def test_status_shows_a_sinks_url_without_its_secrets(tmp_path: Path) -> None:
    from agent.sync.registry import describe

    url = "https://repo.example/epcis?key=s3cret"
    cfg = load_config(
        write(tmp_path, VALID + replace_once(EPCIS, "http://127.0.0.1:8080/epcis", url))
    )
    shown = describe(cfg.sinks[1])["to"]
    assert "s3cret" not in shown and shown.startswith("https://repo.example/epcis?key=")
