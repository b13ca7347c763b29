"""Config paths from the environment (systemd's LoadCredential) and the health listen address."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_config, read_token, token_path
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
    (creds / "ledger-token").chmod(0o400)  # as systemd's LoadCredential leaves it
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    cfg = load_config(
        write(tmp_path, BASE + "token_file = '${CREDENTIALS_DIRECTORY}/ledger-token'\n")
    )
    assert token_path(cfg) == creds / "ledger-token"
    assert read_token(cfg) == "tok-123"


def test_unset_variable_names_the_key_and_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    path = write(tmp_path, BASE + "token_file = '${CREDENTIALS_DIRECTORY}/ledger-token'\n")
    cfg = load_config(path)  # the config itself is fine outside the service (status, check)
    with pytest.raises(ConfigError) as err:
        read_token(cfg)
    assert err.value.key == "sync.token_file"
    assert "${CREDENTIALS_DIRECTORY} to be set" in str(err.value)
    assert "LoadCredential=" in str(err.value)


def test_config_check_outside_the_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from agent.cli import main

    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    path = write(tmp_path, BASE + "token_file = '${CREDENTIALS_DIRECTORY}/ledger-token'\n")
    result = CliRunner().invoke(main, ["config", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert "token from systemd's LoadCredential at run time, not checked here" in result.output


def test_other_path_variables_expand_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGETALLY_STATE", str(tmp_path / "state"))
    cfg = load_config(
        write(
            tmp_path,
            "[agent]\nid = 'a'\nstate_dir = '${EDGETALLY_STATE}'\n"
            "[sync]\nurl = 'http://x'\ntoken_file = 't'\n",
        )
    )
    assert cfg.agent.state_dir == tmp_path / "state"
    monkeypatch.delenv("EDGETALLY_STATE")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "agent.toml")
    assert err.value.key == "agent.state_dir"


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
