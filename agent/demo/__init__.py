"""`edgetally demo`: the whole pipeline on embedded defaults, no hardware, no config.

A reference ledger runs as its own process on loopback; the agent runs here
with a receiving station and a simulated scanner replaying a dock session, and
a portal station whose LLRP reader is the emulator (real LLRP over TCP) while a
pallet of RFID-tagged cases is driven through the door. Stock on hand is read
back from the ledger as it changes, and at the end the ledger's on-hand is
checked against what the agent's outbox recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from agent.config import parse_config
from agent.demo.ports import free_port
from agent.errors import EdgeTallyError
from agent.model import Movement
from drivers.llrp_emulator import LlrpEmulator, bundled_scenario, load_scenario

if TYPE_CHECKING:
    from agent.demo.sinks import DemoSinks

AGENT_ID = "demo-dock"
DEMO_USER = "demo"
LOCATION = "DOCK-1"
PORTAL_LOCATION = "DOOR-2"
PORTAL_SCENARIO = "portal-inbound"
PORTAL_TIMEOUT_S = 120.0  # scenario seconds the pallet may take before the demo says so


def demo_config(
    workdir: Path,
    url: str,
    token_file: Path,
    script: Path,
    speed: float,
    repeat: bool,
    reader_port: int | None = None,
    health_port: int = 0,
    sink_tables: list[dict[str, Any]] | None = None,
) -> Any:
    table: dict[str, Any] = {
        "agent": {"id": AGENT_ID, "state_dir": str(workdir), "log_level": "warning"},
        "outbox": {"max_bytes": "64MiB"},
        "sync": {"url": url, "token_file": str(token_file), "backoff_cap_s": 5.0},
        "health": {"listen": f"127.0.0.1:{health_port}"},
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
    if sink_tables:
        table["sync"]["sink"] = sink_tables
    if reader_port is not None:
        table["devices"].append(
            {
                "id": "door-2-reader",
                "driver": "llrp",
                "host": "127.0.0.1",
                "port": reader_port,
                "antennas": [1, 2, 3, 4],
                "keepalive_s": 1.0,
                "report_timeout_ms": 100,
            }
        )
        table["stations"].append(
            {
                "name": "door-2",
                "kind": "portal",
                "location": PORTAL_LOCATION,
                "devices": ["door-2-reader"],
                "outside_antennas": [1, 2],
                "inside_antennas": [3, 4],
            }
        )
    return parse_config(table, file="<demo defaults>", base=workdir)


async def run_demo(
    forever: bool,
    speed: float,
    echo: Callable[[str], None] = print,
    sinks: tuple[str, ...] = (),
) -> int:
    """The demo; ``sinks`` (from --sinks) adds sinks beside the ledger (agent.demo.sinks)."""
    if not sinks:
        return await _demo(forever, speed, echo, None)
    from agent.demo.sinks import DemoSinks

    extras = await DemoSinks.start(sinks, AGENT_ID)
    try:
        return await _demo(forever, speed, echo, extras)
    finally:
        await extras.close()


async def _demo(
    forever: bool, speed: float, echo: Callable[[str], None], extras: DemoSinks | None
) -> int:
    from agent import logs
    from agent.cli import write_secret
    from agent.daemon import Daemon
    from ledger import LedgerStore
    from ledger.valuation.items import import_items

    # Bad reads are shown in the table below; the JSON log keeps to errors here.
    logs.setup(os.environ.get("EDGETALLY_DEMO_LOG", "error"), stream=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="edgetally-demo-") as tmp:
        workdir = Path(tmp)
        db = workdir / "ledger.db"
        password = secrets.token_urlsafe(9)  # a fresh one each run: the demo is a real login
        costs = (resources.files("agent.demo") / "costs.csv").read_text(encoding="utf-8")
        with LedgerStore(db) as store:
            token = store.add_agent(AGENT_ID)
            # The stock shown below is read with a reader's token: the agent's reads only its own journal.
            watch = store.create_token("demo-watch", role="reader")
            store.add_user(DEMO_USER, password)
            # A small cost list: the ledger values every receipt at these standard costs.
            store.write(lambda d: import_items(d, costs, "agent/demo/costs.csv"))
        token_file = workdir / "token"
        write_secret(token_file, token)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        ledger = spawn_ledger(db, port)
        try:
            async with httpx.AsyncClient(
                base_url=url, headers={"Authorization": f"Bearer {watch}"}, timeout=5
            ) as client:
                await _wait_healthy(client, ledger)
                echo(f"ledger   {url}  (pid {ledger.pid}, {db})")
                health_port = free_port()
                echo(f"site dashboard  {url}/  (log in as {DEMO_USER}, password {password})")
                echo(f"dock page       http://127.0.0.1:{health_port}/  (the agent's, live)")
                scenario = dataclasses.replace(
                    load_scenario(bundled_scenario(PORTAL_SCENARIO)),
                    speed=max(speed, 1.0) if speed else 10.0,
                )
                pallet = sum(
                    len(g.epcs) for g in scenario.tags if g.motion == "pass" and g.direction == "in"
                )
                with resources.as_file(resources.files("agent.demo") / "dock.jsonl") as script:
                    async with LlrpEmulator(scenario, host="127.0.0.1", port=0) as reader:
                        config = demo_config(
                            workdir,
                            url,
                            token_file,
                            script,
                            speed,
                            forever,
                            reader.port,
                            health_port,
                            extras.tables() if extras else None,
                        )
                        daemon = Daemon(config, token)
                        echo(
                            f"agent    {AGENT_ID}: receiving station dock-1 at {LOCATION}, "
                            f"simulated scanner replaying {script.name}"
                        )
                        echo(
                            f"portal   door-2 at {PORTAL_LOCATION}: LLRP reader emulator on "
                            f"127.0.0.1:{reader.port}, a pallet of {pallet} tagged cases "
                            "driven in through the door"
                        )
                        if extras is not None and extras.describe():
                            echo(str(extras.describe()))
                        echo("")
                        echo(f"{'location':<10} {'item or pallet':<28} {'on hand':>8}")
                        code = await _run(daemon, client, forever, echo, pallet)
                        if extras is not None:
                            delivered = {n: s.status.delivered for n, s in daemon.syncers.items()}
                            await extras.summary(delivered, echo)
                        return code
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
    daemon: Any,
    client: httpx.AsyncClient,
    forever: bool,
    echo: Callable[[str], None],
    pallet: int,
) -> int:
    run_task = asyncio.create_task(daemon.run(handle_signals=True), name="daemon")
    watch_task = asyncio.create_task(_watch_stock(client, daemon, echo), name="watch")
    settled = asyncio.create_task(_settled(daemon, client, pallet), name="settled")
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
    portal = sum(q for (loc, _), q in stock.items() if loc == PORTAL_LOCATION)
    if portal != pallet:
        echo(f"MISMATCH: the portal received {portal} of the {pallet} cases driven through it")
        return 1
    if stock == expected:
        where = ", ".join(sorted({loc for loc, _ in stock}))
        pallets = {k: q for k, q in stock.items() if is_sscc(k[1])}
        items = {k: q for k, q in stock.items() if k not in pallets}
        echo(
            f"ledger on hand matches the agent's outbox: {sum(items.values())} units "
            f"of {len(items)} items and {sum(pallets.values())} pallet(s) at {where}; "
            f"all {pallet} cases through the portal received"
        )
        await _show_value(client, echo)
        return 0
    echo(f"MISMATCH: ledger {stock} vs outbox {expected}")
    return 1


def spawn_ledger(db: Path, port: int) -> subprocess.Popen[bytes]:
    """``edgetally ledger serve`` on ``db`` as a child process on a loopback port; its JSON
    lines are not shown (the demo prints the stock itself)."""
    return subprocess.Popen(
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
        stdout=subprocess.DEVNULL,
    )


async def _show_value(client: httpx.AsyncClient, echo: Callable[[str], None]) -> None:
    """Stock value and COGS beside on-hand: what the ledger's valuation made of the run."""
    value = (await client.get("/v1/reports/stock-value")).json()["rows"]
    cogs = (await client.get("/v1/reports/cogs")).json()["rows"][-1]
    alerts = (await client.get("/v1/alerts")).json()["metrics"]["open"]
    echo("")
    echo(f"{'location':<10} {'item or pallet':<28} {'on hand':>8} {'unit cost':>10} {'value':>10}")
    for row in value:
        cost = _cost(row["unit_cost"])
        echo(
            f"{row['location']:<10} {_label(row['item']):<28} {row['qty']:>8} {cost:>10} "
            f"{row['value']:>10}"
        )
    total = sum(Decimal(r["value"]) for r in value)
    currency = cogs["currency"]
    echo(
        f"stock value {total} {currency}; cost of goods sold {cogs['cogs']} {currency}; "
        f"{alerts} low-stock alert(s) open"
    )


def _cost(text: str | None) -> str:
    """A unit cost as a person reads it: 18.00, 4.125; the ledger keeps up to 6 places."""
    if not text:
        return "-"
    exact = Decimal(text)
    cents = exact.quantize(Decimal("0.01"))
    return str(cents) if cents == exact else str(exact.normalize())


async def _settled(daemon: Any, client: httpx.AsyncClient, pallet: int) -> None:
    """The scanner's script has ended, the pallet is through, and everything is delivered."""
    await daemon.ready.wait()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PORTAL_TIMEOUT_S
    scanners = [t for t in daemon._pumps if t.get_name() == "driver:dock-scanner"]
    while True:
        await asyncio.sleep(0.25)
        if not all(t.done() for t in scanners) or daemon.outbox.pending_count:
            continue
        with contextlib.suppress(httpx.HTTPError):
            stock = await _stock(client)
            if sum(q for (loc, _), q in stock.items() if loc == PORTAL_LOCATION) >= pallet:
                return
        if loop.time() > deadline:
            return  # _run reports how many cases the portal saw


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
                    echo(f"{key[0]:<10} {_label(key[1]):<28} {qty:>8}   ({delta:+d})")
            seen = now
        new = daemon.counters.reads["bad"] - bad_seen
        if new > 0:
            bad = [f for d in daemon.drivers for f in getattr(d, "given", ()) if f.kind == "bad"]
            for feedback in bad[-new:]:
                echo(f"{'bad read':<10} {feedback.reason}  (kept in the outbox, scanner told)")
            bad_seen += new
        await asyncio.sleep(0.25)


def is_sscc(key: str) -> bool:
    """An 18-digit key with a valid GS1 check digit: a pallet's SSCC (on-hand is kept by
    GTIN-14 for items, so nothing else is 18 digits)."""
    if len(key) != 18 or not (key.isascii() and key.isdigit()):
        return False
    body = [int(d) for d in key[:-1]]
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == int(key[-1])


def _label(key: str) -> str:
    return f"pallet SSCC {key}" if is_sscc(key) else key


def _outbox_on_hand(daemon: Any) -> dict[tuple[str, str], int]:
    """What the agent itself stored and delivered, summed per location and item."""
    from agent.outbox import connect

    conn = connect(daemon.config.outbox_path, readonly=True)
    try:
        totals: Counter[tuple[str, str]] = Counter()
        for (payload,) in conn.execute("SELECT payload FROM movements WHERE state = 'delivered'"):
            m = Movement.from_json(payload)
            key = m.item.key()
            if key and m.to and m.kind in ("receive", "transfer", "return"):
                totals[(m.to, key)] += m.qty
            if key and m.from_ and m.kind in ("ship", "transfer"):
                totals[(m.from_, key)] -= m.qty
        return dict(totals)
    finally:
        conn.close()


__all__ = ["demo_config", "free_port", "run_demo"]
