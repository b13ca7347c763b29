"""Security checks against a real ledger process and a real agent process, over loopback.

Tokens: missing, wrong and another agent's are refused, and an agent run
with another agent's token applies nothing and raises an alarm. Movement ids
cannot be reused to overwrite. Request bodies are bounded, whether the size
is declared or streamed. Barcodes carrying SQL, shell and terminal-escape
payloads are data: stored byte-exact, sent byte-exact, logged escaped.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from agent.outbox import connect
from ledger import LedgerStore
from ledger.store import FOREIGN_REASON
from tests.e2e.harness import (
    AGENT,
    ROOT,
    LedgerProcess,
    agent_env,
    gtin14,
    make_daemon,
    write_config,
    write_script,
)


def movement(agent: str = AGENT, mid: str | None = None, qty: int = 1) -> dict[str, Any]:
    return {
        "id": mid or str(uuid.uuid4()),
        "agent": agent,
        "seq": 1,
        "kind": "receive",
        "item": {"gtin": gtin14(1)},
        "qty": qty,
        "to": "DOCK-7",
        "station": "dock-7",
        "device": "scanner-1",
        "observed_at": "2026-05-01T10:00:00Z",
        "clock": {"synced": True, "boot_id": "b", "mono_ns": 1},
    }


def post(ledger: LedgerProcess, token: str | None, body: object) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.post(f"{ledger.url}/v1/movements", json=body, headers=headers, timeout=10)


def test_missing_wrong_and_other_agents_tokens_are_refused(ledger: LedgerProcess) -> None:
    with LedgerStore(ledger.db) as store:
        other = store.add_agent("dock-8")
    body = {"agent": AGENT, "movements": [movement()]}
    assert post(ledger, None, body).status_code == 401
    assert post(ledger, "not-a-token", body).status_code == 401
    assert post(ledger, ledger.token + "x", body).status_code == 401
    r = post(ledger, other, body)  # dock-8's token, dock-7's batch
    assert r.status_code == 403 and "not the agent of this token" in r.json()["error"]
    # dock-8 may only post its own movements, even inside its own batch
    r = post(ledger, other, {"agent": "dock-8", "movements": [movement()]})
    assert r.json()["results"][0]["status"] == "rejected"
    assert ledger.journal() == [] and ledger.on_hand() == {}


async def test_an_agent_with_another_agents_token_applies_nothing_and_alarms(
    tmp_path: Path, ledger: LedgerProcess
) -> None:
    with LedgerStore(ledger.db) as store:
        other = store.add_agent("dock-8")
    script = write_script(tmp_path / "s.jsonl", [{"data": gtin14(i)} for i in range(3)])
    cfg = write_config(
        tmp_path, ledger.url, ledger.token_file, script, extra_sync="auth_retry_s = 7\n"
    )
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        """No wall time; stop the agent after its third wait."""
        waits.append(seconds)
        if len(waits) == 3:
            daemon.stop()
        await asyncio.sleep(0)

    daemon = make_daemon(cfg, other, sleep=sleep)
    await asyncio.wait_for(daemon.run(), 60)
    # A configuration alarm is retried slowly, not hammered. The stop asked for at the
    # third wait may land after one more attempt (the loop runs on until it is cancelled).
    assert waits[:3] == [7.0, 7.0, 7.0] and set(waits) == {7.0} and len(waits) <= 4
    assert "ledger_auth" in daemon.alarms.active()
    assert daemon.syncer is not None and "403" in (daemon.syncer.status.last_error or "")
    assert other not in (daemon.syncer.status.last_error or "")
    assert ledger.journal() == []


def test_a_movement_id_cannot_be_reused_to_overwrite(ledger: LedgerProcess) -> None:
    with LedgerStore(ledger.db) as store:
        other = store.add_agent("dock-8")
    original = movement(qty=2)
    assert (
        post(ledger, ledger.token, {"agent": AGENT, "movements": [original]}).json()["results"][0][
            "status"
        ]
        == "applied"
    )
    bigger = {**original, "qty": 500}
    r = post(ledger, ledger.token, {"agent": AGENT, "movements": [bigger]})
    assert r.json()["results"][0] == {
        "id": original["id"],
        "status": "conflict",
        "reason": "id already used for a different movement",
    }
    stolen = movement("dock-8", original["id"], qty=9)  # another agent, the same id
    r = post(ledger, other, {"agent": "dock-8", "movements": [stolen]})
    # refused without saying the id exists, or whose it is (issue 18)
    assert r.json()["results"][0] == {
        "id": original["id"],
        "status": "rejected",
        "reason": FOREIGN_REASON,
    }
    [entry] = ledger.journal()
    assert (entry["id"], entry["agent"], entry["qty"]) == (original["id"], AGENT, 2)
    assert ledger.on_hand() == {f"DOCK-7/{gtin14(1)}": 2}


def test_request_size_is_bounded_declared_or_streamed(ledger: LedgerProcess) -> None:
    padding = "x" * (9 * 2**20)
    body = json.dumps({"agent": AGENT, "movements": [movement()], "pad": padding}).encode()
    headers = {"Authorization": f"Bearer {ledger.token}", "Content-Type": "application/json"}
    r = httpx.post(f"{ledger.url}/v1/movements", content=body, headers=headers, timeout=30)
    assert r.status_code == 413 and "larger than" in r.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked, counted as it arrives
        for i in range(0, len(body), 1 << 16):
            yield body[i : i + (1 << 16)]

    try:
        r = httpx.post(f"{ledger.url}/v1/movements", content=chunks(), headers=headers, timeout=30)
        assert r.status_code == 413
    except httpx.WriteError:
        pass  # the ledger answered 413 and closed while we were still sending: refused too
    assert httpx.get(f"{ledger.url}/healthz", timeout=5).status_code == 200
    assert ledger.journal() == []


SQL = "'; DROP TABLE journal; --"
SQL2 = "x' OR '1'='1"


def payloads(marker: Path) -> list[bytes]:
    """Script lines; PO codes become the ``ref`` of the item scanned after them."""
    return [
        f"PO:{SQL}".encode(),
        f"PO:{SQL2}".encode(),
        f"PO:$(touch {marker})".encode(),
        f"PO:`touch {marker}`; touch {marker}".encode(),
        b"\x1b]52;c;ZWNobyBvd25lZA==\x07",  # OSC 52: write the terminal's clipboard
        b"\x1b[2J\x1b[H\x1b[31mred",  # clear the screen, move, colour
        b'ok\r\n{"level":"info","event":"forged"}',  # a forged log line
        b"Robert'); DROP TABLE reads;--",
        b"\x00NUL\x9b\xff\xfe",  # NUL, a C1 CSI byte, not UTF-8
    ]


def test_sql_shell_and_escape_barcodes_are_stored_sent_and_logged_as_data(
    tmp_path: Path, ledger: LedgerProcess
) -> None:
    marker = Path(f"/tmp/et-pwned-{uuid.uuid4().hex[:8]}")  # short: PO values are <= 64 chars
    item = gtin14(5)
    raw = payloads(marker)
    lines: list[dict[str, str]] = []
    for data in raw:
        lines.append({"data_hex": data.hex()})
        if data.startswith(b"PO:"):
            lines.append({"data": item})
    script = write_script(tmp_path / "s.jsonl", lines)
    ack = tmp_path / "ack.jsonl"
    log = tmp_path / "agent.log"
    cfg = write_config(
        tmp_path, ledger.url, ledger.token_file, script, ack_log=ack, log_level="debug"
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "run", "--config", str(cfg)],
            cwd=ROOT,
            env=agent_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 60
        while (
            len(ledger.journal()) < 4
            or not ack.exists()
            or (len(ack.read_text().splitlines()) < len(lines))
        ):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the session did not finish"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0

    # stored byte-exact, in order
    conn = connect(tmp_path / "outbox.db", readonly=True)
    stored = [bytes(r[0]) for r in conn.execute("SELECT data FROM reads ORDER BY id")]
    conn.close()
    assert stored == [
        bytes.fromhex(x["data_hex"]) if "data_hex" in x else x["data"].encode() for x in lines
    ]
    # sent byte-exact: the PO text is the movement's ref at the ledger
    journal = [e for e in ledger.journal() if e["source"] == "agent"]
    pos = [d[3:].decode() for d in raw if d.startswith(b"PO:")]
    assert [e["ref"] for e in journal] == [{"po": p} for p in pos]
    assert ledger.on_hand() == {f"DOCK-7/{item}": 4}  # the ledger's tables are all there
    assert not marker.exists(), "a barcode ran a shell command"

    # logged escaped: every line is one JSON object of printable ASCII
    text = log.read_bytes()
    assert b"\x1b" not in text and b"\x00" not in text and b"\x07" not in text
    assert all(32 <= b < 127 for line in text.splitlines() for b in line)
    events = [json.loads(line) for line in text.splitlines()]
    assert not any(e.get("event") == "forged" for e in events)
    logged = [e["data"] for e in events if e.get("event") == "read"]
    for data in raw:
        assert data.decode("utf-8", "backslashreplace") in logged
