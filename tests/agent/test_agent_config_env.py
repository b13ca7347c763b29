"""Config paths from the environment (systemd's LoadCredential) and the health listen address."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_config, read_token
from agent.errors import ConfigError

BASE = "[agent]\nid = 'dock-1'\n[sync]\nurl = 'http://127.0.0.1:8600'\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_token_file_from_credentials_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "ledger-token").write_text("tok-123\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    cfg = load_config(
        write(tmp_path, BASE + "token_file = '${CREDENTIALS_DIRECTORY}/ledger-token'\n")
    )
    assert cfg.sync.token_file == creds / "ledger-token"
    assert read_token(cfg) == "tok-123"


def test_unset_variable_names_the_key_and_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    path = write(tmp_path, BASE + "token_file = '${CREDENTIALS_DIRECTORY}/ledger-token'\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.key == "sync.token_file"
    assert "${CREDENTIALS_DIRECTORY} to be set" in str(err.value)
    assert "LoadCredential=" in str(err.value)


@pytest.mark.parametrize("listen", ["127.0.0.1:8711", "[::1]:9000", "0.0.0.0:0", ""])
def test_health_listen_accepted(tmp_path: Path, listen: str) -> None:
    cfg = load_config(write(tmp_path, BASE + f"token_file = 't'\n[health]\nlisten = '{listen}'\n"))
    assert cfg.health.listen == listen


@pytest.mark.parametrize("listen", ["8711", "localhost", ":8711", "host:port", "h:70000", "h:٣"])
def test_health_listen_refused(tmp_path: Path, listen: str) -> None:
    path = write(tmp_path, BASE + f"token_file = 't'\n[health]\nlisten = '{listen}'\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.key == "health.listen" and "host:port" in err.value.expected
