"""The README stays true: commands, settings and the CI command (datasette's test_docs habit)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import click
import pytest

from agent.cli import main
from agent.config import load_config, settings_table

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def commands(group: click.Group, prefix: str = "edgetally") -> list[tuple[str, click.Command]]:
    out = []
    for name, cmd in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(cmd, click.Group):
            out.extend(commands(cmd, path))
        else:
            out.append((path, cmd))
    return out


def test_every_command_has_help_and_is_in_the_readme() -> None:
    found = commands(main)
    assert len(found) >= 7
    for path, cmd in found:
        assert cmd.help and len(cmd.help) > 20, f"{path} has no help text"
        for param in cmd.params:
            if isinstance(param, click.Option):
                assert param.help, f"{path} {param.opts[0]} has no help text"
        assert f"`{path}" in README, f"{path} is not in the README"


def test_settings_table_in_readme_matches_the_code() -> None:
    assert settings_table() in README


def test_ci_runs_the_readme_test_command() -> None:
    block = re.search(
        r"<!-- test-command -->\n```\n(.+?)\n```\n<!-- /test-command -->", README, re.S
    )
    assert block is not None
    command = block.group(1)
    assert "pytest" in command and "pip install -e '.[test]'" in command
    ci = (ROOT / ".ci" / "run").read_text()
    assert "test-command" in ci and "set -euo pipefail" in ci
    # the extraction .ci/run performs gives exactly the README's command
    extracted = subprocess.run(
        ["bash", str(ROOT / ".ci" / "run"), "--print-command"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert extracted == command


def test_example_configs_load(tmp_path: Path) -> None:
    for path in sorted((ROOT / "config").glob("*.toml")):
        cfg = load_config(path)
        assert cfg.stations, f"{path.name} has no station"


def test_example_configs_pass_config_check_and_say_nothing_stale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from click.testing import CliRunner

    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    for path in sorted((ROOT / "config").glob("*.toml")):
        out = CliRunner().invoke(main, ["config", "check", str(path)])
        assert out.exit_code == 0, f"{path.name}: {out.output}"
        text = path.read_text().lower()
        for stale in ("drivers land", "have not landed", "not yet implemented", "todo"):
            assert stale not in text, f"{path.name} says {stale!r}"
