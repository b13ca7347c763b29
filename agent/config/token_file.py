"""The sync token: read from its file only when needed, and never shown."""

from __future__ import annotations

from pathlib import Path

from agent.config.loader import _expand
from agent.config.settings import Config
from agent.errors import ConfigError


def token_path(config: Config) -> Path:
    """sync.token_file with ${VARS} expanded now (systemd sets CREDENTIALS_DIRECTORY at run time)."""
    raw = str(config.sync.token_file)
    path = Path(_expand(raw, str(config.file), "sync.token_file"))
    return path if path.is_absolute() else config.file.parent / path


def read_token(config: Config) -> str:
    """Read the bearer token from its file; the error never shows the token."""
    path = token_path(config)
    _refuse_shared(config, path)
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


def _refuse_shared(config: Config, path: Path) -> None:
    """Refuse a token others can read, as ssh refuses such a private key."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return  # the read that follows says why
    if mode & 0o044:
        who = {0o040: "its group", 0o004: "others", 0o044: "its group and others"}[mode & 0o044]
        raise ConfigError(
            str(config.file),
            "sync.token_file",
            f"a file only its owner can read; {path} has mode {mode:04o}, readable by {who}: "
            f"run `chmod 600 {path}`",
        )
