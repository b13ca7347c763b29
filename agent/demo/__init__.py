"""`edgetally demo`: the whole pipeline on embedded defaults, no hardware, no config.

A reference ledger runs as its own process on loopback; the agent runs here
with a receiving station and a simulated scanner replaying a dock session.
Stock on hand is read back from the ledger as it changes, and at the end the
ledger's on-hand is checked against what the agent's outbox recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import httpx

from agent.config import parse_config
from agent.errors import EdgeTallyError
from agent.model import Movement

AGENT_ID = "demo-dock"
LOCATION = "DOCK-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def demo_config(
    workdir: Path, url: str, token_file: Path, script: Path, speed: float, repeat: bool
) -> Any:
    table = {
        "agent": {"id": AGENT_ID, "state_dir": str(workdir), "log_level": "warning"},
        "outbox": {"max_bytes": "64MiB"},
        "sync": {"url": url, "token_file": str(token_file), "backoff_cap_s": 5.0},
        "health": {"listen": "127.0.0.1:0"},
        "devices": [
            {
                "id": "dock-scanner",
                "driver": "simulated",
                "script": str(script),
                "speed": speed,
                "repeat": repeat,
            }
        ],
        "stations": [
            {
                "name": "dock-1",
                "kind": "receiving",
                "location": LOCATION,
                "devices": ["dock-scanner"],
            }
        ],
    }
    return parse_config(table, file="<demo defaults>", base=workdir)


async def run_demo(forever: bool, speed: float, echo: Callable[[str], None] = print) -> int:
    from agent import logs
    from agent.cli import write_secret
    from agent.daemon import Daemon
    from ledger import LedgerStore

    # Bad reads are shown in the table below; the JSON log keeps to errors here.
    logs.setup(os.environ.get("EDGETALLY_DEMO_LOG", "error"), stream=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="edgetally-demo-") as tmp:
        workdir = Path(tmp)
        db = workdir / "ledger.db"
        with LedgerStore(db) as store:
            token = store.add_agent(AGENT_ID)
        token_file = workdir / "token"
        write_secret(token_file, token)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        ledger = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agent.cli",
                "ledger",
                "serve",
                "--db",
                str(db),
                "--port",
                str(port),
            ],
            stdin=subprocess.DEVNULL,
        )
        try:
            async with httpx.AsyncClient(
                base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=5
            ) as client:
                await _wait_healthy(client, ledger)
                echo(f"ledger   {url}  (pid {ledger.pid}, {db})")
                with resources.as_file(resources.files("agent.demo") / "dock.jsonl") as script:
                    config = demo_config(workdir, url, token_file, script, speed, forever)
                    daemon = Daemon(config, token)
                    echo(
                        f"agent    {AGENT_ID}: receiving station dock-1 at {LOCATION}, "
                        f"simulated scanner replaying {script.name}"
                    )
                    echo("")
                    echo(f"{'location':<10} {'item':<22} {'on hand':>8}")
                    return await _run(daemon, client, forever, echo)
        finally:
            ledger.send_signal(signal.SIGTERM)
            try:
                ledger.wait(10)
            except subprocess.TimeoutExpired:
                ledger.kill()
                ledger.wait()


async def _wait_healthy(client: httpx.AsyncClient, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            raise EdgeTallyError(f"the demo ledger exited at start (code {proc.returncode})")
        with contextlib.suppress(httpx.TransportError):
            if (await client.get("/healthz")).status_code == 200:
                return
        await asyncio.sleep(0.05)
    raise EdgeTallyError("the demo ledger did not answer /healthz within 10 s")


async def _run(
    daemon: Any, client: httpx.AsyncClient, forever: bool, echo: Callable[[str], None]
) -> int:
    run_task = asyncio.create_task(daemon.run(handle_signals=True), name="daemon")
    watch_task = asyncio.create_task(_watch_stock(client, daemon, echo), name="watch")
    settled = asyncio.create_task(daemon.wait_settled(), name="settled")
    waits = {run_task, settled} if not forever else {run_task}
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        await asyncio.sleep(0.6)  # let the watcher print the last change
    finally:
        settled.cancel()
        watch_task.cancel()
        daemon.stop()
        await asyncio.gather(settled, watch_task, return_exceptions=True)
        await run_task
    stock = await _stock(client)
    expected = _outbox_on_hand(daemon)
    counts = daemon.counters.reads
    echo("")
    echo(
        f"reads: {counts['good']} good, {counts['bad']} bad (kept, signalled), "
        f"{counts['refused']} refused; movements delivered: {daemon.syncer.status.delivered}"
    )
    if stock == expected:
        echo(
            f"ledger on hand matches the agent's outbox: {sum(stock.values())} units "
            f"of {len(stock)} items at {LOCATION}"
        )
        return 0
    echo(f"MISMATCH: ledger {stock} vs outbox {expected}")
    return 1


async def _stock(client: httpx.AsyncClient) -> dict[tuple[str, str], int]:
    r = await client.get("/v1/stock")
    r.raise_for_status()
    return {(row["location"], row["item"]): row["qty"] for row in r.json()["stock"]}


async def _watch_stock(client: httpx.AsyncClient, daemon: Any, echo: Callable[[str], None]) -> None:
    seen: dict[tuple[str, str], int] = {}
    bad_seen = 0
    while True:
        with contextlib.suppress(httpx.HTTPError):
            now = await _stock(client)
            for key, qty in sorted(now.items()):
                if seen.get(key) != qty:
                    delta = qty - seen.get(key, 0)
                    echo(f"{key[0]:<10} {key[1]:<22} {qty:>8}   ({delta:+d})")
            seen = now
        new = daemon.counters.reads["bad"] - bad_seen
        if new > 0:
            bad = [f for d in daemon.drivers for f in getattr(d, "given", ()) if f.kind == "bad"]
            for feedback in bad[-new:]:
                echo(f"{'bad read':<10} {feedback.reason}  (kept in the outbox, scanner told)")
            bad_seen += new
        await asyncio.sleep(0.25)


def _outbox_on_hand(daemon: Any) -> dict[tuple[str, str], int]:
    """What the agent itself stored, summed: receives into the dock, by item."""
    from agent.outbox import connect

    conn = connect(daemon.config.outbox_path, readonly=True)
    try:
        totals: Counter[tuple[str, str]] = Counter()
        for (payload,) in conn.execute("SELECT payload FROM movements WHERE state = 'delivered'"):
            m = Movement.from_json(payload)
            key = m.item.key()
            if m.kind == "receive" and m.to and key:
                totals[(m.to, key)] += m.qty
        return dict(totals)
    finally:
        conn.close()


__all__ = ["demo_config", "free_port", "run_demo"]
