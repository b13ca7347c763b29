"""A real mosquitto for the tests, and a subscriber that keeps every message it gets."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable

import aiomqtt

from agent.demo.broker import MosquittoBroker


class Subscriber:
    """Subscribed to ``topic`` at QoS 1; ``messages`` holds (topic, payload, retain)."""

    def __init__(self, broker: MosquittoBroker, topic: str = "edgetally/#") -> None:
        self.broker = broker
        self.topic = topic
        self.messages: list[tuple[str, bytes, bool]] = []
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def connect(self) -> None:
        client = aiomqtt.Client(self.broker.host, self.broker.port, timeout=10)
        await client.__aenter__()
        await client.subscribe(self.topic, qos=1)
        self._client = client
        self._task = asyncio.create_task(self._collect(client))

    async def _collect(self, client: aiomqtt.Client) -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            async for m in client.messages:
                payload = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
                self.messages.append((str(m.topic), payload, m.retain))
                self._changed.set()

    async def close(self) -> None:
        task, client = self._task, self._client
        self._task = self._client = None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await client.__aexit__(None, None, None)

    async def __aenter__(self) -> Subscriber:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def movement_ids(self) -> list[str]:
        """The id of every movement message, duplicates included, in arrival order."""
        return [json.loads(p)["id"] for t, p, _ in self.messages if t.endswith("/movements")]

    async def wait_for(self, done: Callable[[Subscriber], bool], timeout_s: float = 30) -> None:
        async def until() -> None:
            while not done(self):
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(until(), timeout_s)
