"""/healthz, /metrics and /status of a running agent, and `edgetally status`."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from harness import (
    ROOT,
    LedgerProcess,
    agent_env,
    free_port,
    gtin14,
    make_daemon,
    write_config,
    write_script,
)
from prometheus_client.parser import text_string_to_metric_families

from agent import logs
from agent.clock import Clock


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_healthz_503_while_sync_stalls_then_200_after_the_backlog_drains(
    tmp_path: Path, ledger_down: LedgerProcess
) -> None:
    script = write_script(tmp_path / "s.jsonl", [{"data": gtin14(i)} for i in range(5)])
    cfg = write_config(
        tmp_path,
        ledger_down.url,
        ledger_down.token_file,
        script,
        extra_sync="stall_alarm_s = 1\n",
        # the stall alone: "ledger down" (tested below) is held off here
        extra_health="ledger_down_attempts = 100000\nledger_down_s = 100000\n",
    )
    daemon = make_daemon(cfg, ledger_down.token, clock=Clock(synced=lambda: True))
    task = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.ready.wait(), 30)
        url = f"http://127.0.0.1:{daemon.observer.port}"
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/healthz")).status_code == 200
            await asyncio.sleep(1.6)  # past stall_alarm_s with the ledger down
            r = await client.get("/healthz")
            assert r.status_code == 503
            [reason] = r.json()["reasons"]
            assert reason.startswith("sync stalled: the oldest pending movement has waited")
            assert "unreachable" in reason
            await asyncio.to_thread(ledger_down.start)
            await asyncio.wait_for(daemon.wait_settled(), 60)
            r = await client.get("/healthz")
            assert (r.status_code, r.json()) == (200, {"status": "ok"})
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 10)


async def test_metrics_after_a_scripted_session(tmp_path: Path, ledger: LedgerProcess) -> None:
    script = write_script(
        tmp_path / "s.jsonl",
        [{"data": gtin14(1)}, {"data": gtin14(2)}, {"data": "nonsense"}, {"data": gtin14(1)}],
    )
    cfg = write_config(tmp_path, ledger.url, ledger.token_file, script)
    daemon = make_daemon(cfg, ledger.token)
    task = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.wait_settled(), 60)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.observer.port}") as c:
            r = await c.get("/metrics")
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 10)
    assert r.headers["content-type"].startswith("text/plain")
    got = samples(r.text)
    assert got[("edgetally_reads_total", (("device", "scanner-1"), ("result", "good")))] == 3
    assert got[("edgetally_reads_total", (("device", "scanner-1"), ("result", "bad")))] == 1
    assert got[("edgetally_movements_total", (("kind", "receive"), ("state", "stored")))] == 3
    assert got[("edgetally_movements_total", (("kind", "receive"), ("state", "delivered")))] == 3
    assert got[("edgetally_outbox_pending", ())] == 0
    assert got[("edgetally_device_connected", (("device", "scanner-1"),))] == 1
    assert got[("edgetally_sync_request_seconds_count", ())] >= 1
    assert got[("edgetally_sync_retries_total", ())] == 0
    assert got[("edgetally_alarm", (("alarm", "sync_stalled"),))] == 0
    assert got[("edgetally_outbox_bytes", ())] > 0


async def test_unsynchronised_clock_is_a_health_reason_and_in_every_movement(
    tmp_path: Path, ledger: LedgerProcess
) -> None:
    script = write_script(tmp_path / "s.jsonl", [{"data": gtin14(3)}])
    cfg = write_config(tmp_path, ledger.url, ledger.token_file, script)
    daemon = make_daemon(cfg, ledger.token, clock=Clock(synced=lambda: False))
    task = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.wait_settled(), 60)
        assert daemon.observer.health_reasons() == []  # a warning, not a failure
        url = f"http://127.0.0.1:{daemon.observer.port}"
        async with httpx.AsyncClient(base_url=url) as client:
            r = await client.get("/healthz")
            assert (r.status_code, r.json()) == (
                200,
                {
                    "status": "degraded",
                    "warnings": [
                        "wall clock not synchronised: movements carry clock.synced = false"
                    ],
                },
            )
            status = (await client.get("/status")).json()
            assert status["healthy"] is True and status["warnings"] == r.json()["warnings"]
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 10)
    [movement] = [e for e in ledger.journal() if e["source"] == "agent"]
    assert movement["clock"]["synced"] is False
    assert movement["clock"]["boot_id"] == daemon.clock.boot_id


def test_status_once_json_from_a_running_agent(tmp_path: Path, ledger: LedgerProcess) -> None:
    script = write_script(tmp_path / "s.jsonl", [{"data": gtin14(i)} for i in range(3)])
    port = free_port()
    cfg = write_config(
        tmp_path, ledger.url, ledger.token_file, script, health_listen=f"127.0.0.1:{port}"
    )
    with (tmp_path / "agent.log").open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "run", "--config", str(cfg)],
            cwd=ROOT,
            env=agent_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        report: dict = {}
        while time.monotonic() < deadline:
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "agent.cli",
                    "status",
                    "--config",
                    str(cfg),
                    "--once",
                    "--json",
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:  # the agent has not made its outbox yet
                assert "no outbox at" in done.stderr
                time.sleep(0.1)
                continue
            report = json.loads(done.stdout)
            if report["agent"]["reachable"] and report["outbox"]["delivered"] == 3:
                break
            time.sleep(0.1)
        agent = report["agent"]
        assert agent["reachable"] and agent["agent"] == "dock-7"
        assert agent["stations"] == [
            {
                "name": "dock-7",
                "kind": "receiving",
                "location": "DOCK-7",
                "devices": ["scanner-1"],
                "session": {},
            }
        ]
        [device] = agent["devices"]
        assert device["id"] == "scanner-1" and device["connected"] is True
        assert device["last_read_age_s"] is not None
        assert agent["reads"] == {"good": 3}
        assert agent["sync"]["delivered"] == 3 and agent["outbox"]["pending"] == 0
        assert report["outbox"]["delivered"] == 3 and report["outbox"]["pending"] == 0
        human = subprocess.run(
            [sys.executable, "-m", "agent.cli", "status", "--config", str(cfg), "--once"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "scanner-1" in human and "dock-7" in human and "outbox" in human
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    # with the agent stopped, status still answers from the outbox file
    done = subprocess.run(
        [sys.executable, "-m", "agent.cli", "status", "--config", str(cfg), "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(done.stdout)
    assert report["agent"]["reachable"] is False and report["outbox"]["delivered"] == 3


def test_a_barcode_with_esc_and_newline_stays_one_safe_log_line() -> None:
    stream = io.StringIO()
    logs.setup("debug", stream=stream)
    log = logging.getLogger("edgetally.test")
    logs.event(log, "read", data="\x1b[2J\x1b[31mPWNED\nfake line\r\x07\x1d", token_hint=None)
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    assert "\x1b" not in text and "\r" not in text and "\x07" not in text
    doc = json.loads(text)
    assert doc["data"] == "\x1b[2J\x1b[31mPWNED\nfake line\r\x07\x1d"  # kept, as data
    assert "\\u001b[2J" in text


async def test_health_endpoint_answers_bad_requests_without_harm(
    tmp_path: Path, ledger: LedgerProcess
) -> None:
    cfg = write_config(tmp_path, ledger.url, ledger.token_file, None)
    daemon = make_daemon(cfg, ledger.token)
    task = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.ready.wait(), 30)
        reader, writer = await asyncio.open_connection("127.0.0.1", daemon.observer.port)
        writer.write(b"\x00\x01garbage\r\n\r\n")
        await writer.drain()
        assert (await reader.read()).startswith(b"HTTP/1.1 400 ")
        writer.close()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.observer.port}") as c:
            assert (await c.get("/nope")).status_code == 404
            assert (await c.post("/healthz")).status_code == 405
            assert (await c.get("/status")).json()["agent"] == "dock-7"
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 10)


async def test_daemon_speaks_the_notify_protocol_on_a_real_socket(
    tmp_path: Path, ledger: LedgerProcess
) -> None:
    import socket

    from agent.notify import Notifier

    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    notifier = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "200000"})
    cfg = write_config(tmp_path, ledger.url, ledger.token_file, None)
    daemon = make_daemon(cfg, ledger.token, notifier=notifier)
    got: list[str] = []

    async def listen() -> None:  # as systemd does: read as they come
        loop = asyncio.get_running_loop()
        while True:
            got.append((await loop.sock_recv(sock, 4096)).decode())

    listener = asyncio.create_task(listen())
    task = asyncio.create_task(daemon.run())
    await asyncio.wait_for(daemon.ready.wait(), 30)
    await asyncio.sleep(0.5)  # a few watchdog intervals of 0.1 s
    daemon.stop()
    await asyncio.wait_for(task, 10)
    await asyncio.sleep(0.1)
    listener.cancel()
    sock.close()
    assert got[0].startswith("READY=1\nSTATUS=0 pending; last delivery never")
    pings = [g for g in got if g == "WATCHDOG=1"]
    assert len(pings) >= 3
    assert got[-1] == "STOPPING=1", got
    assert not notifier.enabled  # closed with the daemon


async def test_a_health_port_another_agent_holds_refuses_the_start_and_status_says_whose(
    tmp_path: Path, ledger: LedgerProcess
) -> None:
    port = free_port()
    one = tmp_path / "one"
    two = tmp_path / "two"
    one.mkdir()
    two.mkdir()
    cfg1 = write_config(one, ledger.url, ledger.token_file, None, health_listen=f"127.0.0.1:{port}")
    cfg2 = write_config(two, ledger.url, ledger.token_file, None, health_listen=f"127.0.0.1:{port}")
    cfg2.write_text(cfg2.read_text().replace('id = "dock-7"', 'id = "dock-8"'))
    daemon = make_daemon(cfg1, ledger.token)
    task = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.ready.wait(), 30)

        def edgetally(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "agent.cli", *args],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=60,
            )

        ran = await asyncio.to_thread(edgetally, "run", "--config", str(cfg2))
        assert ran.returncode == 1
        line = ran.stderr.strip().splitlines()[-1]
        assert line.startswith(f"Error: {cfg2}: health.listen: an address this agent can listen")
        assert f"127.0.0.1:{port}: Address already in use" in line
        assert "Traceback" not in ran.stderr
        shown = await asyncio.to_thread(edgetally, "status", "--config", str(cfg2), "--json")
        assert shown.returncode == 0, shown.stderr
        agent = json.loads(shown.stdout)["agent"]
        assert agent["reachable"] is False
        assert (
            "is answered by agent 'dock-7'" in agent["why"]
            and "not this config's 'dock-8'" in (agent["why"])
        )
        mine = await asyncio.to_thread(edgetally, "status", "--config", str(cfg1), "--json")
        assert json.loads(mine.stdout)["agent"]["reachable"] is True
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 10)


async def test_require_clock_sync_makes_the_clock_a_failure_again(
    tmp_path: Path, ledger: LedgerProcess
) -> None:
    cfg = write_config(
        tmp_path, ledger.url, ledger.token_file, None, extra_health="require_clock_sync = true\n"
    )
    daemon = make_daemon(cfg, ledger.token, clock=Clock(synced=lambda: False))
    task = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.ready.wait(), 30)
        assert daemon.observer.health_reasons() == [
            "wall clock not synchronised: movements carry clock.synced = false"
        ]
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 10)


async def test_a_ledger_that_is_down_reaches_healthz_well_before_the_stall_alarm(
    tmp_path: Path, ledger_down: LedgerProcess
) -> None:
    script = write_script(tmp_path / "s.jsonl", [{"data": gtin14(1)}])
    cfg = write_config(
        tmp_path,
        ledger_down.url,
        ledger_down.token_file,
        script,
        backoff_initial_s=0.02,
        backoff_cap_s=0.05,
        extra_health="ledger_down_attempts = 3\n",
    )  # stall_alarm_s stays 600
    daemon = make_daemon(cfg, ledger_down.token, clock=Clock(synced=lambda: True))
    task = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.ready.wait(), 30)
        url = f"http://127.0.0.1:{daemon.observer.port}"
        async with httpx.AsyncClient(base_url=url) as client:
            for _ in range(200):
                r = await client.get("/healthz")
                if r.status_code == 503:
                    break
                await asyncio.sleep(0.05)
            [reason] = r.json()["reasons"]
            assert reason.startswith("ledger not reachable: ")
            assert daemon.syncer is not None and daemon.syncer.status.failed_attempts >= 3
            await asyncio.to_thread(ledger_down.start)
            await asyncio.wait_for(daemon.wait_settled(), 60)
            r = await client.get("/healthz")
            assert (r.status_code, r.json()) == (200, {"status": "ok"})
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 10)


async def test_the_flow_line_says_data_is_flowing_at_the_default_level(
    tmp_path: Path, ledger: LedgerProcess, caplog: pytest.LogCaptureFixture
) -> None:
    script = write_script(tmp_path / "s.jsonl", [{"data": gtin14(i)} for i in range(4)])
    cfg = write_config(tmp_path, ledger.url, ledger.token_file, script)
    cfg.write_text(
        cfg.read_text().replace('log_level = "info"', 'log_level = "info"\nlog_flow_s = 0.1')
    )
    daemon = make_daemon(cfg, ledger.token, clock=Clock(synced=lambda: True))
    caplog.set_level(logging.INFO, logger="edgetally")
    task = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.wait_settled(), 60)
        await asyncio.sleep(0.3)  # the next flow line after the last delivery
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 10)
    flows = [r.fields for r in caplog.records if r.getMessage() == "flow"]  # type: ignore[attr-defined]
    assert flows, "no flow line at info"
    assert sum(f["reads"].get("good", 0) for f in flows) == 4
    assert sum(f["stored"] for f in flows) == 4
    assert sum(f["delivered"] for f in flows) == 4
    assert flows[-1]["pending"] == 0
