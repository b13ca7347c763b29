"""A subscriber that writes the id of every movement it receives, one per line.

    python -m bench.mqtt_count --host H --port P --topic T --out FILE

For bench.outage --sinks: a process of its own, so a million messages are not
counted on the agent's or the bench's CPU time. Prints ``subscribed`` on stdout
once its subscription is acknowledged; stops on SIGTERM, with FILE flushed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

import aiomqtt
import orjson


async def count(host: str, port: int, topic: str, out: str) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    with open(out, "w", encoding="ascii") as f:
        async with aiomqtt.Client(host, port, max_queued_incoming_messages=0) as client:
            await client.subscribe(topic, qos=1)
            print("subscribed", flush=True)

            async def take() -> None:
                async for m in client.messages:
                    if isinstance(m.payload, bytes):
                        f.write(orjson.loads(m.payload)["id"] + "\n")

            task = asyncio.create_task(take())
            await stop.wait()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.mqtt_count")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    asyncio.run(count(a.host, a.port, a.topic, a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
