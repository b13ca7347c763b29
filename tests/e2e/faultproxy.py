"""A fault-injecting HTTP/1.1 proxy between the agent and the ledger, on real TCP.

Each request takes the next fault from a script: pass it on, answer a status
itself (with or without Retry-After), drop the connection before forwarding,
or forward it and then cut the connection so the answer is lost after the
ledger applied the batch. The agent's code sees only real sockets.

More faults: ``reset`` sends a TCP RST when the request's head has arrived
(mid-request, nothing forwarded); ``reset_after`` forwards, then resets instead
of answering; ``truncate`` forwards and cuts the answer half-way; ``delay``
holds the request ``delay_s`` before forwarding; ``stall`` never answers (past
the agent's timeout) and ``stall_after`` forwards first, so the ledger has
applied what the agent times out on. ``pause()`` stops listening and drops
every open connection, so connects are refused until ``resume()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections import deque
from dataclasses import dataclass, field


@dataclass
class Fault:
    # "pass" | "status" | "drop" | "lost" | "stall" | "stall_after" | "reset" | "reset_after"
    # | "truncate" | "delay"
    kind: str
    status: int = 0
    retry_after: str | None = None
    delay_s: float = 0.0


def delay(seconds: float) -> Fault:
    return Fault("delay", delay_s=seconds)


def status(code: int, retry_after: str | None = None) -> Fault:
    return Fault("status", code, retry_after)


PASS, DROP, LOST, STALL = Fault("pass"), Fault("drop"), Fault("lost"), Fault("stall")
STALL_AFTER, RESET, RESET_AFTER = Fault("stall_after"), Fault("reset"), Fault("reset_after")
TRUNCATE = Fault("truncate")


@dataclass
class FaultProxy:
    upstream_port: int
    faults: deque[Fault] = field(default_factory=deque)
    seen: list[str] = field(default_factory=list)  # what was done to each POST
    port: int = 0
    _server: asyncio.Server | None = None
    _closing: asyncio.Event = field(default_factory=asyncio.Event)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def __aenter__(self) -> FaultProxy:
        await self.resume()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing.set()  # releases stalled requests
        await self.pause()

    async def pause(self) -> None:
        """Stop listening and drop every open connection: new connects are refused."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.close()
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)

    async def resume(self) -> None:
        """Listen again, on the same port once one was chosen."""
        if self._server is None:
            self._server = await asyncio.start_server(
                self._client, "127.0.0.1", self.port, reuse_address=True
            )
            self.port = self._server.sockets[0].getsockname()[1]

    @property
    def listening(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await _read_head(reader)
                if head is None:
                    return
                is_post = head.startswith(b"POST ")
                fault = self.faults.popleft() if is_post and self.faults else PASS
                if is_post:
                    self.seen.append(fault.kind if fault.kind != "status" else str(fault.status))
                if fault.kind == "reset":
                    _reset(writer)  # the body may still be on its way: mid-request
                    return
                request = head + await _read_body(reader, head)
                if fault.kind == "drop":
                    return
                if fault.kind == "stall":
                    await self._closing.wait()
                    return
                if fault.kind == "delay":
                    await asyncio.sleep(fault.delay_s)
                if fault.kind == "status":
                    extra = f"Retry-After: {fault.retry_after}\r\n" if fault.retry_after else ""
                    body = b'{"error": "injected fault"}'
                    writer.write(
                        f"HTTP/1.1 {fault.status} Injected\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(body)}\r\n{extra}\r\n".encode()
                        + body
                    )
                    await writer.drain()
                    continue
                response = await self._forward(request)
                if fault.kind == "lost":
                    return  # the ledger applied it; the agent never hears
                if fault.kind == "reset_after":
                    _reset(writer)
                    return
                if fault.kind == "stall_after":
                    await self._closing.wait()
                    return
                if fault.kind == "truncate":
                    writer.write(response[: len(response) // 2])
                    await writer.drain()
                    return
                writer.write(response)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _forward(self, request: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        try:
            writer.write(request)
            await writer.drain()
            response = await _read_message(reader)
            assert response is not None, "the ledger closed without answering"
            return response
        finally:
            writer.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a crashed middlebox would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _read_head(reader: asyncio.StreamReader) -> bytes | None:
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise


async def _read_body(reader: asyncio.StreamReader, head: bytes) -> bytes:
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return await reader.readexactly(length) if length else b""


async def _read_message(reader: asyncio.StreamReader) -> bytes | None:
    """One HTTP/1.1 message with a Content-Length body (what httpx and uvicorn send)."""
    head = await _read_head(reader)
    if head is None:
        return None
    return head + await _read_body(reader, head)
