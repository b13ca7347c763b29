"""`edgetally demo --sinks`: more sinks beside the demo's ledger, and proof they delivered.

The ledger always runs (the demo's stock comes from it). ``mqtt`` starts a
throwaway mosquitto on a free loopback port, adds an mqtt sink for it, and
subscribes to the agent's topics, so the end of the demo can say how many
distinct movements the broker's subscribers received.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.demo.broker import MosquittoBroker, mosquitto_binary
from agent.errors import EdgeTallyError

DEMO_SINKS = ("ledger", "mqtt")  # what `all` means: every sink type the demo can run here


def parse_sinks(value: str) -> tuple[str, ...]:
    """``ledger,mqtt`` or ``all`` into sink types, the ledger first and always there."""
    names = [v.strip() for v in value.split(",") if v.strip()]
    if names == ["all"]:
        return DEMO_SINKS
    unknown = [n for n in names if n not in DEMO_SINKS]
    if unknown or not names:
        raise EdgeTallyError(
            f"--sinks {value!r}: expected a comma-separated list of {', '.join(DEMO_SINKS)}, "
            "or all (tryton and epcis need servers the demo does not start)"
        )
    return ("ledger", *(n for n in DEMO_SINKS[1:] if n in names))


@dataclass
class DemoSinks:
    """The extra sinks' servers and what they received; ``close`` stops them."""

    kinds: tuple[str, ...]
    broker: MosquittoBroker | None = None
    received: set[str] = field(default_factory=set)
    copies: int = 0
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
        return out

    def tables(self) -> list[dict[str, Any]]:
        """The [[sync.sink]] tables for the demo's config."""
        if self.broker is None:
            return []
        return [
            {"name": "mqtt", "type": "mqtt", "host": self.broker.host, "port": self.broker.port}
        ]

    def describe(self) -> str | None:
        if self.broker is None:
            return None
        return (
            f"mqtt     broker mosquitto on 127.0.0.1:{self.broker.port} (pid of its own), "
            "movements on edgetally/<agent>/<station>/movements"
        )

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
