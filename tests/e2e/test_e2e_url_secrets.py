"""Secrets in sync.url never shown, and the path joined before the query (issue 18, item 3).

A real agent process against a ledger that is down, with a key in sync.url's
query: its sync log lines, `status`, `config show` and `doctor` show the URL
with the key's value hidden. A real ledger up: the sink's requests reach
/v1/movements with the query kept, not ``…?api_key=K/v1/movements``.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest
from harness import ROOT, LedgerProcess, agent_env, gtin14, write_config, write_script
from test_e2e_process import EDGETALLY, start_agent, wait_for

from agent.config import load_config
from agent.errors import ConfigError
from agent.model import ClockStamp, Item, Movement
from agent.outbox import Pending
from agent.sync import HttpLedgerSink
from agent.urls import endpoint, redacted

KEY = "SECRETKEY-7f3a"


def test_redacted_and_endpoint() -> None:
    url = f"http://user:pa55@ledger:8600/base/?api_key={KEY}&x=1"
    assert redacted(url) == "http://***:***@ledger:8600/base/?api_key=***&x=***"
    assert str(endpoint(url, "/v1/movements")) == (
        f"http://user:pa55@ledger:8600/base/v1/movements?api_key={KEY}&x=1"
    )
    assert str(endpoint("http://ledger:8600", "/v1/movements")) == "http://ledger:8600/v1/movements"


def test_a_user_or_password_in_sync_url_is_refused_without_showing_them(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("t\n")
    (tmp_path / "token").chmod(0o600)
    cfg = tmp_path / "agent.toml"
    cfg.write_text(
        f'[agent]\nid = "a"\n[sync]\nurl = "http://user:pa55@ledger:8600/"\n'
        f'token_file = "{tmp_path / "token"}"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert "without a user or password" in str(info.value) and "pa55" not in str(info.value)


def test_the_key_is_in_no_log_line_status_config_show_or_doctor(
    tmp_path: Path, ledger_down: LedgerProcess
) -> None:
    script = write_script(tmp_path / "s.jsonl", [{"data": gtin14(i)} for i in range(2)])
    log = tmp_path / "agent.log"
    cfg = write_config(
        tmp_path, f"{ledger_down.url}/?api_key={KEY}", ledger_down.token_file, script
    )
    proc = start_agent(cfg, log)
    try:
        wait_for(lambda: log.read_text().count('"sync_failed"') >= 2, 30, "sync failures")
        status = subprocess.run(
            [*EDGETALLY, "status", "--config", str(cfg), "--json"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    text = log.read_text()
    failures = [json.loads(line) for line in text.splitlines() if '"sync_failed"' in line]
    assert f"ledger {ledger_down.url}/v1/movements?api_key=***: unreachable" in failures[0]["error"]
    assert KEY not in text
    assert KEY not in status.stdout and "api_key=***" in status.stdout
    shown = subprocess.run(
        [*EDGETALLY, "config", "show", str(cfg)], cwd=ROOT, capture_output=True, text=True
    )
    assert json.loads(shown.stdout)["sync"]["url"] == f"{ledger_down.url}/?api_key=***"
    doctor = subprocess.run(
        [*EDGETALLY, "doctor", "--config", str(cfg)],
        cwd=ROOT, capture_output=True, text=True, env=agent_env(),
    )  # fmt: skip
    assert "api_key=***" in doctor.stdout + doctor.stderr
    assert KEY not in doctor.stdout + doctor.stderr


async def test_requests_go_to_the_path_with_the_query_kept(ledger: LedgerProcess) -> None:
    m = Movement(
        id="0190a5c4-1a2b-7c3d-8e4f-5a6b7c8d9e0f", agent="dock-7", kind="receive",
        item=Item(gtin=gtin14(1)), qty=1, station="dock-7", device="s", to="DOCK-7",
        observed_at="2026-05-01T10:00:00Z", clock=ClockStamp(True, "b", 1), seq=1,
    )  # fmt: skip
    async with HttpLedgerSink(f"{ledger.url}/?api_key={KEY}", ledger.token) as sink:
        assert sink.shown == f"{ledger.url}/v1/movements?api_key=***"
        [result] = await sink.send("dock-7", [Pending(1, m.id, m.to_json(), 0)], "b1")
    assert result.status == "applied"
