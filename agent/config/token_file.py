"""Sink secrets (the sync token, a broker's or Tryton's password): read from their
files only when needed, and never shown."""

from __future__ import annotations

from pathlib import Path

from agent.config.loader import _expand
from agent.config.settings import Config
from agent.config.sinks import SinkSettings
from agent.errors import ConfigError


def token_path(config: Config) -> Path:
    """sync.token_file with ${VARS} expanded now (systemd sets CREDENTIALS_DIRECTORY at run time)."""
    return _secret_path(config, str(config.sync.token_file), "sync.token_file")


def read_token(config: Config) -> str:
    """Read [sync]'s bearer token from its file (empty when [sync] names no ledger sink);
    the error never shows the token."""
    if config.sync.token_file is None:
        return ""
    return _read(config, token_path(config), "sync.token_file", "token")


def secret_paths(config: Config, sink: SinkSettings) -> dict[str, Path]:
    """A sink's secret files by key, ${VARS} expanded now."""
    files: dict[str, Path] = sink.options.secret_files()
    return {
        key: _secret_path(config, str(raw), f"{sink.where}.{key}") for key, raw in files.items()
    }


def read_secrets(config: Config, sink: SinkSettings) -> dict[str, str]:
    """A sink's secrets by key (``token_file``, ``password_file``), read from their files."""
    return {
        key: _read(
            config, path, f"{sink.where}.{key}", "token" if key == "token_file" else "secret"
        )
        for key, path in secret_paths(config, sink).items()
    }


def _secret_path(config: Config, raw: str, key: str) -> Path:
    path = Path(_expand(raw, str(config.file), key))
    return path if path.is_absolute() else config.file.parent / path


def _read(config: Config, path: Path, key: str, what: str = "secret") -> str:
    _refuse_shared(config, path, key)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(
            str(config.file), key, f"a readable file holding the {what}; {path}: {reason}"
        ) from exc
    if not token or any(c.isspace() for c in token) or not token.isprintable():
        raise ConfigError(str(config.file), key, f"{path} to hold one {what} on one line")
    return token


def _refuse_shared(config: Config, path: Path, key: str) -> None:
    """Refuse a secret others can read, as ssh refuses such a private key."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return  # the read that follows says why
    if mode & 0o044:
        who = {0o040: "its group", 0o004: "others", 0o044: "its group and others"}[mode & 0o044]
        raise ConfigError(
            str(config.file),
            key,
            f"a file only its owner can read; {path} has mode {mode:04o}, readable by {who}: "
            f"run `chmod 600 {path}`",
        )
