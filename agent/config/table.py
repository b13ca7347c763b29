"""The README's settings table, made from the settings' own help text."""

from __future__ import annotations

from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from agent.config.settings import (
    AgentSettings,
    HealthSettings,
    OutboxSettings,
    RecordSettings,
    SyncSettings,
)
from agent.config.sinks import SINK_SETTINGS
from agent.config.stations import StationSettings
from agent.identify.settings import IdentifySettings


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
    sinks: list[tuple[str, type[Any], str | None]] = [
        (f'[[sync.sink]] type = "{name}"', SINK_SETTINGS[name], f"sink:{name}")
        for name in SINK_SETTINGS
    ]
    sections[3:3] = sinks
    sections += [
        (f'[[devices]] driver = "{name}"', DRIVERS[name].Settings, name) for name in sorted(DRIVERS)
    ]
    lines = ["| key | default | what it is |", "|---|---|---|"]
    for title, cls, driver in sections:
        lines.append(f"| **`{title}`** | | |")
        if driver is not None and driver.startswith("sink:"):
            lines.append(
                "| `name` | `required` | the sink's name; its delivery state is kept under it |"
            )
            lines.append(f"| `type` | `required` | the kind of sink: `{driver[5:]}` |")
        elif driver is not None:
            lines.append("| `id` | `required` | device id; stations name their devices by it |")
            lines.append(f"| `driver` | `required` | the kind of device: `{driver}` |")
        lines.extend(f"| `{n}` | `{d}` | {h} |" for n, d, h in settings_help(cls))
    return "\n".join(lines)
