"""The agent as a real process: kill -9 mid-burst, clean stop, CLI errors, status, demo."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import ROOT, LedgerProcess, agent_env, gtin14, write_config, write_script

from agent.status import outbox_status

EDGETALLY = [sys.executable, "-m", "agent.cli"]


def start_agent(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [*EDGETALLY, "run", "--config", str(config)],
            cwd=ROOT,
            env=agent_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def acked_good(ack: Path) -> list[str]:
    if not ack.exists():
        return []
    out = []
    for line in ack.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by the kill: its read was not acknowledged in full
        if rec["kind"] == "good":
            out.append(rec["read_id"])
    return out


def test_kill_9_mid_burst_loses_nothing_and_sends_nothing_twice(
    tmp_path: Path, ledger: LedgerProcess
) -> None:
    script = write_script(tmp_path / "s.jsonl", [{"data": gtin14(i % 20)} for i in range(4000)])
    ack = tmp_path / "ack.jsonl"
    log = tmp_path / "agent.log"
    cfg = write_config(tmp_path, ledger.url, ledger.token_file, script, ack_log=ack)
    for kill_after in (300, 1500, 2600):
        proc = start_agent(cfg, log)
        before = len(acked_good(ack))
        target = before + kill_after
        wait_for(lambda t=target: len(acked_good(ack)) >= t, 60, "reads acknowledged")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    # Restart with no scanner: it must deliver what the killed runs stored, once.
    drain_cfg = write_config(tmp_path, ledger.url, ledger.token_file, None)
    proc = start_agent(drain_cfg, log)
    try:
        wait_for(
            lambda: outbox_status(tmp_path / "outbox.db", 1 << 30)["outbox"]["pending"] == 0,
            60,
            "the outbox to drain",
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    acked = acked_good(ack)
    journal = [e for e in ledger.journal() if e["source"] == "agent"]
    ids = [e["id"] for e in journal]
    assert len(ids) == len(set(ids)), "a movement was applied twice"
    seqs = sorted(e["seq"] for e in journal)
    assert seqs == list(range(1, len(seqs) + 1)), "seq has a gap or a repeat"
    delivered_reads = [rid for e in journal for rid in e["evidence"]["read_ids"]]
    assert len(delivered_reads) == len(set(delivered_reads)), "a read moved stock twice"
    missing = set(acked) - set(delivered_reads)
    assert not missing, f"{len(missing)} acknowledged reads were lost"
    assert len(acked) >= 4400
    conn = sqlite3.connect(tmp_path / "outbox.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_sigterm_stops_cleanly_within_5_s_and_unreachable_ledger_is_one_line(
    tmp_path: Path, ledger_down: LedgerProcess
) -> None:
    script = write_script(tmp_path / "s.jsonl", [{"data": gtin14(i)} for i in range(3)])
    log = tmp_path / "agent.log"
    cfg = write_config(tmp_path, ledger_down.url, ledger_down.token_file, script)
    proc = start_agent(cfg, log)
    wait_for(lambda: b'"sync_failed"' in log.read_bytes(), 30, "a sync failure")
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert time.monotonic() - started < 5
    text = log.read_text()
    assert "Traceback" not in text
    failures = [json.loads(line) for line in text.splitlines() if '"sync_failed"' in line]
    assert f"ledger {ledger_down.url}/v1/movements: unreachable" in failures[0]["error"]
    events = [json.loads(line)["event"] for line in text.splitlines()]
    # Sync stops last by design, so its retries may still log while the rest stops.
    assert [e for e in events if e != "sync_failed"][-2:] == ["stopping", "stopped"]
    assert ledger_down.token not in text
    # what was read is held for later, and status says so
    status = subprocess.run(
        [*EDGETALLY, "status", "--config", str(cfg), "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(status.stdout)
    assert report["outbox"]["pending"] == 3
    assert "unreachable" in report["sync"]["last_error"]
    assert report["sync"]["attempts"] >= 1


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[agent]\nid = 'a'\n", "agent.toml: sync: required section [sync] is missing"),
        (
            "[agent]\nid = 'a'\n[sync]\nurl = 'ftp://x'\ntoken_file = 't'\n",
            "agent.toml: sync.url: an http:// or https:// URL, got 'ftp://x'",
        ),
        (
            "[agent]\nid = 'a'\n[sync]\nurl = 'http://x'\ntoken_file = 't'\nbatch_mx = 3\n",
            "agent.toml: sync.batch_mx: an unknown key (did you mean 'batch_max'?)",
        ),
        (
            "[agent]\nid = 'a'\n[sync]\nurl = 'http://x'\ntoken_file = 'missing'\n",
            "agent.toml: sync.token_file: a readable file holding the token",
        ),
    ],
)
@pytest.mark.parametrize("command", ["run", "check"])
def test_bad_config_is_one_clear_line(
    tmp_path: Path, toml: str, message: str, command: str
) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(toml)
    args = ["run", "--config", str(path)] if command == "run" else ["config", "check", str(path)]
    proc = subprocess.run([*EDGETALLY, *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("Error: ") and proc.stderr.count("\n") == 1
    assert message in proc.stderr


def test_token_never_shown_on_a_bad_token_file(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("secret-part one\n")
    token.chmod(0o600)
    path = tmp_path / "agent.toml"
    path.write_text(f"[agent]\nid = 'a'\n[sync]\nurl = 'http://x'\ntoken_file = '{token}'\n")
    proc = subprocess.run(
        [*EDGETALLY, "config", "check", str(path)], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert "sync.token_file" in proc.stderr and "one token on one line" in proc.stderr
    assert "secret" not in proc.stderr


def test_demo_runs_to_the_end_and_the_ledger_matches(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*EDGETALLY, "demo", "--speed", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (
        "ledger on hand matches the agent's outbox: 243 units of 6 items and 1 pallet(s) at "
        "DOCK-1, DOOR-2; "
        "all 200 cases through the portal received"
    ) in proc.stdout
    assert "Traceback" not in proc.stderr
    assert "DOCK-1     pallet SSCC 376104250021234569" in proc.stdout  # a pallet, not an item
    # valued at the demo's cost list (agent/demo/costs.csv): 200 cases at 18.00, ...
    assert "DOOR-2     00614141123452                    200      18.00    3600.00" in proc.stdout
    assert "stock value 3841.40 EUR; cost of goods sold 0.00 EUR" in proc.stdout
    assert '"event"' not in proc.stdout  # the ledger's JSON lines stay out of the demo


def test_ledger_serve_refuses_a_taken_port(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [*EDGETALLY, "ledger", "serve", "--db", str(tmp_path / "l.db"), "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert proc.returncode == 1
    assert f"could not listen on 127.0.0.1:{port}" in proc.stderr


def test_demo_with_sinks_all_shows_each_sink_delivering(tmp_path: Path) -> None:
    """`demo --sinks all`: the ledger, a local mosquitto and a second ledger's /epcis; the
    per-sink counts at the end agree, the subscriber got every movement and the second
    ledger's EPCIS query lists one event for each."""
    proc = subprocess.run(
        [*EDGETALLY, "demo", "--speed", "0", "--sinks", "all"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ledger on hand matches the agent's outbox" in proc.stdout
    assert "mqtt     broker mosquitto on 127.0.0.1:" in proc.stdout
    assert "epcis    a second ledger's EPCIS capture, http://127.0.0.1:" in proc.stdout
    assert "sinks: ledger 210 delivered; mqtt 210 delivered; epcis 210 delivered" in proc.stdout
    assert "epcis events query lists 210 events" in proc.stdout
    assert "mqtt subscriber received 210 distinct movement ids" in proc.stdout
    assert "pending publish" not in proc.stdout + proc.stderr  # aiomqtt's chatter stays out


def test_demo_sinks_flag_says_what_it_takes() -> None:
    from agent.demo.sinks import parse_sinks

    assert parse_sinks("all") == parse_sinks("epcis,mqtt,ledger") == ("ledger", "mqtt", "epcis")
    assert parse_sinks("ledger,mqtt") == parse_sinks("mqtt") == ("ledger", "mqtt")
    assert parse_sinks("epcis") == ("ledger", "epcis")
    proc = subprocess.run(
        [*EDGETALLY, "demo", "--sinks", "ledger,kafka"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert (
        "--sinks 'ledger,kafka': expected a comma-separated list of ledger, mqtt, epcis"
        in proc.stderr
    )


async def test_demo_sinks_mqtt_without_mosquitto_says_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import agent.demo.sinks as demo_sinks
    from agent.errors import EdgeTallyError

    monkeypatch.setattr(demo_sinks, "mosquitto_binary", lambda: None)
    with pytest.raises(EdgeTallyError, match="needs the mosquitto MQTT broker, which is not"):
        await demo_sinks.DemoSinks.start(("ledger", "mqtt"), "demo-dock")
