"""The local HTTP endpoint: /healthz, /metrics, /status (loopback by default).

Three GET routes with small answers, served with asyncio streams in the
daemon's own loop. Not uvicorn: it installs signal handlers of its own, which
would take SIGTERM from the daemon that must own its shutdown order; and not
prometheus-client's ``start_http_server``: that is a hidden thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from agent.logs import event

log = logging.getLogger("edgetally.health")
MAX_HEAD = 8192
READ_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"


def json_response(status: int, doc: Any) -> Response:
    return Response(status, json.dumps(doc, indent=2, default=str).encode() + b"\n")


Handler = Callable[[], Awaitable[Response]]
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}


class HealthServer:
    """Serves the routes given; the daemon owns it and closes it on stop."""

    def __init__(self, host: str, port: int, routes: dict[str, Handler]) -> None:
        self.host = host
        self.port = port
        self.routes = routes
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        event(log, "health_listening", host=self.host, port=self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            response = await self._answer(reader)
            head = (
                f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Error')}\r\n"
                f"Content-Type: {response.content_type}\r\n"
                f"Content-Length: {len(response.body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode("ascii") + response.body)
            await writer.drain()
        except (ConnectionError, TimeoutError):
            pass  # the client went away; nothing to tell anyone
        finally:
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader) -> Response:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return json_response(400, {"error": "expected an HTTP/1.1 request"})
        if len(head) > MAX_HEAD:
            return json_response(400, {"error": "request head too large"})
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return json_response(400, {"error": "expected an HTTP/1.1 request line"})
        method, target = parts[0], parts[1].split("?", 1)[0]
        handler = self.routes.get(target)
        if handler is None:
            return json_response(404, {"error": f"no such path; try {', '.join(self.routes)}"})
        if method not in ("GET", "HEAD"):
            return json_response(405, {"error": "only GET"})
        return await handler()
