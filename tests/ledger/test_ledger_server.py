"""The ledger as it runs for real: `serve()` in its own process, uvicorn on loopback."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.demo.ports import free_port
from ledger.store import LedgerStore

ROOT = Path(__file__).resolve().parents[2]
# `from ledger import serve` also checks the package's public names.
RUN = (
    "import sys, pathlib; from ledger import serve; "
    "serve(pathlib.Path(sys.argv[1]), '127.0.0.1', int(sys.argv[2]))"
)


def wait_until_up(base: str, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"ledger exited early with {proc.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("ledger did not come up")


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_real_server_round_trip_and_clean_stop(
    tmp_path: Path, mv: Any, stop: signal.Signals
) -> None:
    db = tmp_path / "ledger.db"
    with LedgerStore(db) as store:
        token = store.add_agent("dock-3")
        reader = store.create_token("office", role="reader")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN, str(db), str(port)], cwd=ROOT, stderr=subprocess.PIPE
    )
    try:
        wait_until_up(base, proc)
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": '"b1"'}
        with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
            body = {"agent": "dock-3", "movements": [mv("receive", 5), mv("ship", 2)]}
            r = client.post("/v1/movements", json=body)
            assert r.status_code == 200
            assert [x["status"] for x in r.json()["results"]] == ["applied", "applied"]
            r = client.post("/v1/movements", json=body)
            assert [x["status"] for x in r.json()["results"]] == ["duplicate", "duplicate"]
            stock = client.get("/v1/stock", headers={"Authorization": f"Bearer {reader}"})
            assert stock.json()["stock"] == [
                {"item": "09506000134352", "location": "DOCK-3", "qty": 3}
            ]

            huge = json.dumps({"agent": "dock-3", "movements": ["x" * 9 * 1024 * 1024]})
            r = client.post(
                "/v1/movements", content=huge, headers={"Content-Type": "application/json"}
            )
            assert r.status_code == 413
            assert client.get("/healthz").json() == {"status": "ok"}
        proc.send_signal(stop)
        _, stderr = proc.communicate(timeout=20)
        assert proc.returncode == 0, stderr.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    with LedgerStore(db) as store:
        assert store.stock()[0]["qty"] == 3


def test_port_in_use_is_a_ledger_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-c", RUN, str(tmp_path / "l.db"), str(port)],
            cwd=ROOT,
            capture_output=True,
            timeout=30,
        )
    assert proc.returncode == 1
    assert b"LedgerError: the ledger could not listen on 127.0.0.1:" in proc.stderr


def test_serve_says_where_it_listens_and_logs_each_batch(tmp_path: Path, mv: Any) -> None:
    """The start line (address, database, agents known) and one access line per batch."""
    db = tmp_path / "ledger.db"
    with LedgerStore(db) as store:
        token = store.add_agent("dock-3")
        store.add_agent("dock-4")
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "ledger", "serve", "--db", str(db), "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        start = json.loads(proc.stdout.readline())
        assert start["event"] == "ledger_listening"
        assert start["database"] == str(db) and start["agents"] == 2
        assert start["url"].startswith("http://127.0.0.1:")
        moves = [mv("receive", 2), mv("receive", 0)]
        with httpx.Client(base_url=start["url"], timeout=10) as client:
            r = client.post(
                "/v1/movements",
                json={"agent": "dock-3", "movements": moves},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.status_code == 200
        line = json.loads(proc.stdout.readline())
        assert {k: line[k] for k in ("event", "agent", "count", "applied", "rejected")} == {
            "event": "batch",
            "agent": "dock-3",
            "count": 2,
            "applied": 1,
            "rejected": 1,
        }
        assert line["duplicate"] == 0 and line["ms"] >= 0
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert proc.stdout is not None
        proc.stdout.close()
