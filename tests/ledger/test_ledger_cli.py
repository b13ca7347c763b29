"""`edgetally ledger serve` and `ledger add-agent` on bad input: one line naming it, exit 1,
and a failed add-agent leaves the agent's old token (and its file) as they were."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent.cli import main
from ledger import LedgerStore

ROOT = Path(__file__).resolve().parents[2]


def not_sqlite(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("this is a text file, not a database\n" * 20)
    return path


@pytest.mark.parametrize(
    ("db", "message"),
    [
        ("missing/ledger.db", "cannot be created: the folder {tmp}/missing does not exist"),
        ("notes.txt", "is not an SQLite database"),
        (".", "is a folder; expected the ledger's SQLite file"),
    ],
)
@pytest.mark.parametrize("command", ["serve", "add-agent"])
def test_a_bad_db_is_one_line_naming_it(
    tmp_path: Path, db: str, message: str, command: str
) -> None:
    not_sqlite(tmp_path)
    path = tmp_path / db
    args = ["ledger", command, "--db", str(path)]
    if command == "add-agent":
        args += ["dock-3", "--token-file", str(tmp_path / "token")]
    else:
        args += ["--port", "0"]
    proc = subprocess.run(
        [sys.executable, "-m", "agent.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"Error: ledger database {path}: {message.format(tmp=tmp_path)}")
    assert proc.stderr.count("\n") == 1
    assert not (tmp_path / "token").exists()  # no token file for a token that was never made


@pytest.mark.parametrize("agent", ["", "dock 3", ".x", "a" * 65])
def test_add_agent_refuses_an_id_no_config_could_use(tmp_path: Path, agent: str) -> None:
    out = CliRunner().invoke(
        main,
        ["ledger", "add-agent", agent, "--db", str(tmp_path / "l.db"), "--token-file", "t"],
    )
    assert out.exit_code == 2
    assert "Invalid value for AGENT_ID" in out.output and "letters, digits" in out.output
    assert "Traceback" not in out.output


def test_a_token_path_that_cannot_be_written_keeps_the_old_token(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    with LedgerStore(db) as store:
        old = store.add_agent("dock-3")
    bad = tmp_path / "no-such-folder" / "token"
    out = CliRunner().invoke(
        main, ["ledger", "add-agent", "dock-3", "--db", str(db), "--token-file", str(bad)]
    )
    assert out.exit_code == 1
    assert f"--token-file {bad}: cannot write it (No such file or directory)" in out.output
    with LedgerStore(db) as store:
        assert store.agent_for_token(old) == "dock-3"  # not replaced by one nobody holds


def test_add_agent_writes_a_private_file_even_over_a_wider_one(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("old\n")
    token.chmod(0o644)
    db = tmp_path / "l.db"
    out = CliRunner().invoke(
        main, ["ledger", "add-agent", "dock-3", "--db", str(db), "--token-file", str(token)]
    )
    assert out.exit_code == 0, out.output
    assert token.stat().st_mode & 0o777 == 0o600
    with LedgerStore(db) as store:
        assert store.agent_for_token(token.read_text().strip()) == "dock-3"


@pytest.mark.parametrize("command", [["add-agent"], ["token", "create"], ["token", "rotate"]])
def test_a_token_file_is_a_new_private_file_renamed_into_place(
    tmp_path: Path, command: list[str]
) -> None:
    """Never written through the old file: its 0644 mode, a hard link to it and a
    reader holding it open all keep the old content (issue 18, item 6)."""
    token = tmp_path / "token"
    token.write_text("old\n")
    token.chmod(0o644)
    link = tmp_path / "link-to-old"
    os.link(token, link)
    with token.open() as held:
        out = CliRunner().invoke(
            main,
            [
                "ledger",
                *command,
                "dock-3",
                "--db",
                str(tmp_path / "l.db"),
                "--token-file",
                str(token),
            ],
        )
        assert out.exit_code == 0, out.output
        assert held.read() == "old\n"
    assert token.stat().st_mode & 0o777 == 0o600
    assert link.read_text() == "old\n" and link.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.db", "link-to-old", "token"]
    with LedgerStore(tmp_path / "l.db") as store:
        assert store.agent_for_token(token.read_text().strip()) == "dock-3"
