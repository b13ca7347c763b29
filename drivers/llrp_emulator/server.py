"""The reader's TCP server: one client at a time, as a real reader serves."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import Counter, deque
from collections.abc import Callable
from types import TracebackType
from typing import Self

from drivers import llrp_frames as f
from drivers.llrp_emulator.scenario import Scenario
from drivers.llrp_emulator.session import ConnectionRecord, Session

CLOSE_GRACE_S = 1.0  # what a client that stopped reading gets before its connection is reset


class LlrpEmulator:
    """``async with LlrpEmulator(scenario) as emu:`` listens on ``emu.port`` until the block ends.

    Like a real reader it serves one client at a time: a second connection is
    told ``Failed (a Client initiated connection already exists)`` and closed.
    """

    def __init__(
        self,
        scenario: Scenario,
        host: str = "127.0.0.1",
        port: int = 0,
        close_grace_s: float = CLOSE_GRACE_S,
    ) -> None:
        self.scenario = scenario
        self.host = host
        self.port = port
        self.close_grace_s = close_grace_s
        self.connections: list[ConnectionRecord] = []
        self.messages_received: deque[str] = deque(maxlen=100_000)
        self.message_counts: Counter[str] = Counter()
        self._server: asyncio.Server | None = None
        self._active: Session | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def session_active(self) -> bool:
        return self._active is not None

    @property
    def unsent_bytes(self) -> int:
        """Bytes written to the client that its socket has not taken: they pile up here
        when the client stops reading."""
        if self._active is None:
            return 0
        return self._active.writer.transport.get_write_buffer_size()

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop listening and drop the client: within ``close_grace_s`` or so whatever the
        client does, since a client that stopped reading is reset."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        if self._active is not None:
            await self._active.close()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=2)
        for task in self._handlers:
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if server is not None:
            await server.wait_closed()  # last: from 3.12 it waits for the connections too

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        peer = writer.get_extra_info("peername")
        peer_text = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        try:
            if self._active is not None:
                record = ConnectionRecord(
                    peer_text, accepted=False, closed="refused: a client is connected"
                )
                self.connections.append(record)
                data = f.ReaderEventNotificationData(
                    f.UTCTimestamp(time.time_ns() // 1000),
                    (f.ConnectionAttemptEvent(f.CONNECTION_FAILED_CLIENT_INITIATED_EXISTS),),
                )
                writer.write(f.ReaderEventNotification(1, data).encode())
                with contextlib.suppress(OSError):
                    await writer.drain()
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                return
            record = ConnectionRecord(peer_text, accepted=True)
            self.connections.append(record)
            session = Session(self, reader, writer, record)
            self._active = session
            try:
                await session.run()
            finally:
                self._active = None
        finally:
            self._handlers.discard(task)


async def serve(
    scenario: Scenario,
    host: str = "127.0.0.1",
    port: int = 5084,
    on_ready: Callable[[LlrpEmulator], None] | None = None,
    handle_signals: bool = False,
) -> None:
    """Run the emulator until cancelled, or with ``handle_signals`` until SIGINT or SIGTERM
    (the CLI's Ctrl+C, a supervisor's stop); ``on_ready`` sees it listening.

    The handlers are our own, not ``asyncio.run``'s: that one leaves SIGINT alone when the
    process started with it ignored (a background job of a script or a CI step, ``cmd &``),
    and then nothing but SIGKILL would stop the emulator.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM) if handle_signals else ()
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        async with LlrpEmulator(scenario, host, port) as emu:
            if on_ready is not None:
                on_ready(emu)
            await stop.wait()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
