"""A fault-injecting HTTP/1.1 proxy between the agent and the ledger, on real TCP.

Each request takes the next fault from a script: pass it on, answer a status
itself (with or without Retry-After), drop the connection before forwarding,
or forward it and then cut the connection so the answer is lost after the
ledger applied the batch. The agent's code sees only real sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, field


@dataclass
class Fault:
    kind: str  # "pass" | "status" | "drop" | "lost" | "stall"
    status: int = 0
    retry_after: str | None = None


def status(code: int, retry_after: str | None = None) -> Fault:
    return Fault("status", code, retry_after)


PASS, DROP, LOST, STALL = Fault("pass"), Fault("drop"), Fault("lost"), Fault("stall")


@dataclass
class FaultProxy:
    upstream_port: int
    faults: deque[Fault] = field(default_factory=deque)
    seen: list[str] = field(default_factory=list)  # what was done to each POST
    port: int = 0
    _server: asyncio.Server | None = None

    async def __aenter__(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_message(reader)
                if request is None:
                    return
                is_post = request.startswith(b"POST ")
                fault = self.faults.popleft() if is_post and self.faults else PASS
                if is_post:
                    self.seen.append(fault.kind if fault.kind != "status" else str(fault.status))
                if fault.kind == "drop":
                    return
                if fault.kind == "stall":
                    await asyncio.sleep(3600)
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
                writer.write(response)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
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


async def _read_message(reader: asyncio.StreamReader) -> bytes | None:
    """One HTTP/1.1 message with a Content-Length body (what httpx and uvicorn send)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return head + body
