"""Run the reference ledger under uvicorn until SIGTERM or SIGINT.

uvicorn already stops gracefully on those signals (in-flight requests finish),
but then raises the signal again so the process dies of it; that would skip
closing the store and make systemd see a kill, not a stop. So ``serve``
installs quiet handlers for uvicorn to restore and returns normally.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from agent import logs
from agent.logs import event
from ledger.app import create_app
from ledger.schema import LedgerError
from ledger.store import LedgerStore

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
log = logging.getLogger("edgetally.ledger")


class _Server(uvicorn.Server):
    """uvicorn's server with our start line: where it listens, on what file, for whom."""

    def __init__(self, config: uvicorn.Config, store: LedgerStore) -> None:
        super().__init__(config)
        self._store = store

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.should_exit or not self.servers:
            return  # the bind failed; serve() says so
        host, port = self.servers[0].sockets[0].getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        event(
            log,
            "ledger_listening",
            url=f"http://{shown}:{port}",
            database=str(self._store.path.absolute()),
            agents=len(self._store.agents()),
        )


def serve(db_path: Path, host: str, port: int, log_level: str = "warning") -> None:
    """Serve the ledger in ``db_path`` on ``host:port``; blocks until told to stop.

    Our JSON lines (the start line, one per batch) go to stdout; uvicorn's own
    log stays at ``log_level``.
    """
    store = LedgerStore(db_path)
    logs.setup("info")
    try:
        config = uvicorn.Config(
            create_app(store),
            host=host,
            port=port,
            log_level=log_level,
            lifespan="off",
            timeout_graceful_shutdown=10,
        )
        with _stop_quietly():
            try:
                _Server(config, store).run()
            except SystemExit as exc:  # uvicorn's answer to a failed bind
                raise LedgerError(f"the ledger could not listen on {host}:{port}") from exc
    finally:
        store.close()


@contextmanager
def _stop_quietly() -> Iterator[None]:
    """While uvicorn runs it owns these signals; what it re-raises afterwards lands here."""
    if threading.current_thread() is not threading.main_thread():
        yield  # uvicorn installs no handlers off the main thread either
        return
    previous = {sig: signal.signal(sig, lambda signum, frame: None) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
