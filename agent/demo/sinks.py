"""`edgetally demo --sinks`: more sinks beside the demo's ledger, and proof they delivered.

The ledger always runs (the demo's stock comes from it). ``mqtt`` starts a
throwaway mosquitto on a free loopback port, adds an mqtt sink for it, and
subscribes to the agent's topics, so the end of the demo can say how many
distinct movements the broker's subscribers received. ``epcis`` starts a second
reference ledger (its own database and agent token) and adds an epcis sink for
its ``/epcis``; the end of the demo says how many events its EPCIS query lists.
A second ledger, not the demo's own: the same movements captured there too
would count the demo's stock twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from agent.demo.broker import MosquittoBroker, mosquitto_binary
from agent.errors import EdgeTallyError

DEMO_SINKS = ("ledger", "mqtt", "epcis")  # what `all` means: every sink type the demo can run here


def parse_sinks(value: str) -> tuple[str, ...]:
    """``ledger,mqtt`` or ``all`` into sink types, the ledger first and always there."""
    names = [v.strip() for v in value.split(",") if v.strip()]
    if names == ["all"]:
        return DEMO_SINKS
    unknown = [n for n in names if n not in DEMO_SINKS]
    if unknown or not names:
        raise EdgeTallyError(
            f"--sinks {value!r}: expected a comma-separated list of {', '.join(DEMO_SINKS)}, "
            "or all (tryton needs a server the demo does not start)"
        )
    return ("ledger", *(n for n in DEMO_SINKS[1:] if n in names))


@dataclass
class DemoSinks:
    """The extra sinks' servers and what they received; ``close`` stops them."""

    kinds: tuple[str, ...]
    broker: MosquittoBroker | None = None
    received: set[str] = field(default_factory=set)
    copies: int = 0
    epcis: EpcisLedger | None = None
    _task: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, kinds: tuple[str, ...], agent: str) -> DemoSinks:
        out = cls(kinds)
        if "mqtt" in kinds:
            if mosquitto_binary() is None:
                raise EdgeTallyError(
                    "--sinks mqtt needs the mosquitto MQTT broker, which is not installed "
                    "(Debian: `sudo apt-get install mosquitto`); or run the demo without mqtt"
                )
            out.broker = await asyncio.to_thread(MosquittoBroker().start)
            ready = asyncio.Event()
            out._task = asyncio.create_task(out._subscribe(agent, ready), name="demo-subscriber")
            await asyncio.wait_for(ready.wait(), 10)
        if "epcis" in kinds:
            try:
                out.epcis = await EpcisLedger.start(agent)
            except BaseException:
                await out.close()
                raise
        return out

    def tables(self) -> list[dict[str, Any]]:
        """The [[sync.sink]] tables for the demo's config."""
        out: list[dict[str, Any]] = []
        if self.broker is not None:
            out.append(
                {"name": "mqtt", "type": "mqtt", "host": self.broker.host, "port": self.broker.port}
            )
        if self.epcis is not None:
            out.append(
                {
                    "name": "epcis",
                    "type": "epcis",
                    "url": f"{self.epcis.url}/epcis",
                    "token_file": str(self.epcis.token_file),
                    "stations": {"dock-1": EpcisLedger.SGLN},
                }
            )
        return out

    def describe(self) -> str | None:
        lines = []
        if self.broker is not None:
            lines.append(
                f"mqtt     broker mosquitto on 127.0.0.1:{self.broker.port} (pid of its own), "
                "movements on edgetally/<agent>/<station>/movements"
            )
        if self.epcis is not None:
            lines.append(
                f"epcis    a second ledger's EPCIS capture, {self.epcis.url}/epcis "
                f"(pid {self.epcis.proc.pid}), events as GS1 EPCIS 2.0"
            )
        return "\n".join(lines) or None

    async def _subscribe(self, agent: str, ready: asyncio.Event) -> None:
        import aiomqtt

        assert self.broker is not None
        async with aiomqtt.Client(self.broker.host, self.broker.port) as client:
            await client.subscribe(f"edgetally/{agent}/+/movements", qos=1)
            ready.set()
            async for message in client.messages:
                payload = message.payload
                if isinstance(payload, bytes | str):
                    self.received.add(json.loads(payload)["id"])
                    self.copies += 1

    async def summary(self, delivered: dict[str, int], echo: Callable[[str], None]) -> None:
        """Per-sink counts at the end; the subscriber's once what was published reached it."""
        want = delivered.get("mqtt", 0)
        for _ in range(100):  # bounded: the last PUBLISHes may still be on their way to it
            if self.broker is None or len(self.received) >= want:
                break
            await asyncio.sleep(0.05)
        parts = [f"{name} {n} delivered" for name, n in delivered.items()]
        echo("sinks: " + "; ".join(parts))
        if self.epcis is not None:
            echo(f"epcis events query lists {await self.epcis.count_events()} events")
        if self.broker is not None:
            echo(
                f"mqtt subscriber received {len(self.received)} distinct movement ids "
                f"in {self.copies} messages (QoS 1: a subscriber dedupes on the id)"
            )

    async def close(self) -> None:
        if self._task is not None:
            import aiomqtt

            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._task
        if self.broker is not None:
            await asyncio.to_thread(self.broker.close)
        if self.epcis is not None:
            await asyncio.to_thread(self.epcis.close)


@dataclass
class EpcisLedger:
    """A second reference ledger, for the epcis sink: its own database, agent and reader tokens."""

    SGLN = "urn:epc:id:sgln:9506000.13435.1"  # dock-1's read point and business location

    url: str
    token_file: Path
    reader: str
    proc: subprocess.Popen[bytes]
    tmp: tempfile.TemporaryDirectory[str]

    @classmethod
    async def start(cls, agent: str) -> EpcisLedger:
        from agent.cli import write_secret
        from agent.demo import _wait_healthy, free_port, spawn_ledger
        from ledger import LedgerStore

        tmp = tempfile.TemporaryDirectory(prefix="edgetally-demo-epcis-")
        db = Path(tmp.name) / "ledger.db"
        with LedgerStore(db) as store:
            token = store.add_agent(agent)
            reader = store.create_token("demo-epcis-watch", role="reader")
        token_file = Path(tmp.name) / "token"
        write_secret(token_file, token)
        port = free_port()
        proc = spawn_ledger(db, port)
        out = cls(f"http://127.0.0.1:{port}", token_file, reader, proc, tmp)
        try:
            async with httpx.AsyncClient(base_url=out.url, timeout=5) as client:
                await _wait_healthy(client, proc)
        except BaseException:
            await asyncio.to_thread(out.close)
            raise
        return out

    async def count_events(self) -> int:
        """How many events the second ledger's EPCIS query lists (a reader's view)."""
        headers = {"Authorization": f"Bearer {self.reader}"}
        async with httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10) as client:
            total, url = 0, "/epcis/events?perPage=1000"
            while url:
                r = await client.get(url)
                r.raise_for_status()
                total += len(r.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"])
                url = r.links.get("next", {}).get("url", "")
            return total

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.tmp.cleanup()
