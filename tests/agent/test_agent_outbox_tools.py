"""`edgetally outbox list|export|retry` on a real outbox file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from agent.cli import main
from agent.outbox import Outbox
from bench.backlog import AGENT, Backlog

STATIONS = [("dock-1", "DOCK-1", ["scanner-1"])]


def make_outbox(tmp_path: Path) -> Path:
    """Ten movements: 1-3 delivered, 4 and 7 rejected by the ledger, the rest pending."""
    path = tmp_path / "outbox.db"
    box = Outbox.open(path, AGENT, 1 << 26)
    try:
        box.store_blocking(Backlog(STATIONS).commits(0, 10))
        box.settle_blocking(
            [(1, "delivered", None), (2, "delivered", None), (3, "delivered", None)]
        )
        box.settle_blocking([(4, "rejected", "unknown item"), (7, "rejected", "unknown item")])
    finally:
        box.close()
    return path


def config(tmp_path: Path) -> Path:
    token = tmp_path / "token"
    token.write_text("t\n")
    token.chmod(0o600)
    path = tmp_path / "agent.toml"
    path.write_text(
        f'[agent]\nid = "{AGENT}"\nstate_dir = "{tmp_path}"\n'
        f'[sync]\nurl = "http://127.0.0.1:1"\ntoken_file = "{token}"\n'
    )
    return path


def cli(*args: str) -> tuple[int, str]:
    out = CliRunner().invoke(main, list(args))
    return out.exit_code, out.output


def test_list_shows_rejected_with_the_ledgers_reason(tmp_path: Path) -> None:
    make_outbox(tmp_path)
    code, out = cli("outbox", "list", "--config", str(config(tmp_path)), "--state", "rejected")
    assert code == 0, out
    header, *lines = out.splitlines()
    assert header.split()[:5] == ["seq", "state", "kind", "item", "qty"]
    assert [line.split()[0] for line in lines] == ["7", "4"]  # newest first
    assert all("rejected" in line and "(unknown item)" in line for line in lines)
    code, out = cli("outbox", "list", "--config", str(config(tmp_path)), "--json", "--limit", "3")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["seq"], r["state"], r["kind"], r["to"]) for r in rows] == [
        (1, "delivered", "receive", "DOCK-1"),
        (2, "delivered", "receive", "DOCK-1"),
        (3, "delivered", "receive", "DOCK-1"),
    ]


def test_export_is_every_movement_as_the_ledger_gets_it(tmp_path: Path) -> None:
    make_outbox(tmp_path)
    code, out = cli("outbox", "export", "--config", str(config(tmp_path)))
    assert code == 0, out
    bodies = [json.loads(line) for line in out.splitlines()]
    assert [b["seq"] for b in bodies] == list(range(1, 11))
    assert {b["outbox_state"] for b in bodies} == {"delivered", "rejected", "pending"}
    assert all(b["agent"] == AGENT and b["id"] for b in bodies)
    code, out = cli("outbox", "export", "--config", str(config(tmp_path)), "--since-seq", "8")
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [9, 10]


def test_retry_is_refused_while_the_agent_runs_then_sets_rejected_to_pending(
    tmp_path: Path,
) -> None:
    path = make_outbox(tmp_path)
    cfg = str(config(tmp_path))
    running = Outbox.open(path, AGENT, 1 << 26)  # the agent, holding its outbox
    try:
        code, out = cli("outbox", "retry", "--config", cfg, "4")
        assert code == 1 and "in another process" in out and "stop that one first" in out
    finally:
        running.close()
    code, out = cli("outbox", "retry", "--config", cfg, "4", "5")  # 5 is pending: untouched
    assert code == 0 and "1 rejected movement(s) set to pending" in out
    code, out = cli("outbox", "list", "--config", cfg, "--state", "rejected")
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["7"]
    code, out = cli("outbox", "retry", "--config", cfg, "--all-rejected")
    assert "1 rejected movement(s)" in out
    box = Outbox.open(path, AGENT, 1 << 26)
    try:
        assert box.pending_count == 7 and [p.seq for p in box.pending(0, 10)][:2] == [4, 5]
    finally:
        box.close()
    code, out = cli("outbox", "retry", "--config", cfg)
    assert code == 2 and "--all-rejected" in out


def test_list_has_a_header_times_refs_whole_items_and_says_what_it_left_out(
    tmp_path: Path,
) -> None:
    path = make_outbox(tmp_path)
    with sqlite3.connect(path) as conn:
        body = json.loads(
            conn.execute("SELECT payload FROM movements WHERE seq = 10").fetchone()[0]
        )
    code, out = cli("outbox", "list", "--config", str(config(tmp_path)), "--limit", "4")
    assert code == 0, out
    header, *lines, footer = out.splitlines()
    assert "observed (UTC)" in header and "ref" in header and "from -> to" in header
    assert [line.split()[0] for line in lines] == ["10", "9", "8", "7"]
    newest = lines[0]
    assert body["item"]["gtin"] in newest  # whole, never cut
    assert body["observed_at"].replace("T", " ")[:19] in newest
    for key, value in body["ref"].items():
        assert f"{key}={value}" in newest
    assert footer == "4 of 10 shown (newest first); --limit 10 for all"
    code, out = cli(
        "outbox", "list", "--config", str(config(tmp_path)), "--limit", "2", "--oldest-first"
    )
    assert [line.split()[0] for line in out.splitlines()[1:3]] == ["1", "2"]
    assert out.splitlines()[-1] == "2 of 10 shown (oldest first); --limit 10 for all"
    code, out = cli("outbox", "list", "--config", str(config(tmp_path)))
    assert "shown" not in out  # all 10 fit the default limit
