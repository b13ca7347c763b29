"""Typed TOML config: every setting has a type, a default and help text.

Like datasette's SETTINGS table: unknown keys and wrong types are rejected at
start-up with a ConfigError naming the file, the key path and what was
expected. Config is passed in to whatever needs it; nothing reads it globally.

``settings`` and ``stations`` hold the typed sections, ``loader`` checks TOML
into them, ``token_file`` reads the sync token, ``table`` makes the README's
table.
"""

from agent.config.loader import build, load_config, parse_config, parse_listen
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
from agent.config.sinks import SINK_SETTINGS, SinkSettings
from agent.config.stations import (
    Disposition,
    StationKind,
    StationSettings,
    parse_antenna_location,
)
from agent.config.table import settings_help, settings_table
from agent.config.token_file import read_secrets, read_token, secret_paths, token_path

__all__ = [
    "SINK_SETTINGS",
    "AgentSettings",
    "Config",
    "DeviceSettings",
    "Disposition",
    "HealthSettings",
    "OutboxSettings",
    "RecordSettings",
    "SinkSettings",
    "Size",
    "StationKind",
    "StationSettings",
    "SyncSettings",
    "build",
    "load_config",
    "parse_antenna_location",
    "parse_config",
    "parse_listen",
    "read_secrets",
    "read_token",
    "secret_paths",
    "settings_help",
    "settings_table",
    "token_path",
]
