"""What `run` would refuse, checked without starting: shared by `config check`, `run`
and `doctor`, so that a config `check` passes is one `run` accepts.

Each check returns the problems it found as ConfigErrors (file, key, what was
expected); none changes anything on disk.
"""

from __future__ import annotations

import os
from pathlib import Path

from agent.config import Config
from agent.errors import ConfigError, DriverError


def existing_parent(path: Path) -> Path:
    """The nearest folder (or file) on the way to ``path`` that exists."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def state_dir_problem(state_dir: Path) -> str | None:
    """Why the agent could not use (or create) its state folder, or None."""
    if state_dir.exists():
        if not state_dir.is_dir():
            return f"{state_dir} is a file; expected a folder for the outbox"
        if not os.access(state_dir, os.W_OK | os.X_OK):
            return f"{state_dir} is not writable by this user"
        return None
    parent = existing_parent(state_dir)
    if not parent.is_dir():
        return f"{state_dir} cannot be created: {parent} is a file, not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{state_dir} cannot be created: {parent} is not writable by this user"
    return None


def check_state_dir(config: Config, systemd_creates: bool = False) -> list[ConfigError]:
    """``systemd_creates``: checked outside the service for a unit whose StateDirectory=
    makes the folder at start, so a missing one this user may not create is no error."""
    state_dir = config.agent.state_dir
    problem = state_dir_problem(state_dir)
    if problem is None or (
        systemd_creates and not state_dir.exists() and existing_parent(state_dir).is_dir()
    ):
        return []
    return [ConfigError(str(config.file), "agent.state_dir", f"a usable folder; {problem}")]


def check_devices(config: Config) -> list[ConfigError]:
    """Each driver's own check of its settings (a simulator's script must exist and parse)."""
    from drivers import DRIVERS

    out = []
    for i, dev in enumerate(config.devices):
        try:
            DRIVERS[dev.driver].preflight(dev.options)
        except DriverError as exc:
            out.append(ConfigError(str(config.file), f"devices[{i}] ({dev.id})", str(exc)))
    return out


def preflight(config: Config, systemd_creates: bool = False) -> list[ConfigError]:
    """Every problem `run` would stop on before its first read (the token is read apart)."""
    return [*check_state_dir(config, systemd_creates), *check_devices(config)]
