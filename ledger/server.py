"""Run the reference ledger under uvicorn until SIGTERM or SIGINT.

uvicorn already stops gracefully on those signals (in-flight requests finish),
but then raises the signal again so the process dies of it; that would skip
closing the store and make systemd see a kill, not a stop. So ``serve``
installs quiet handlers for uvicorn to restore and returns normally.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from ledger.app import create_app
from ledger.schema import LedgerError
from ledger.store import LedgerStore

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def serve(db_path: Path, host: str, port: int, log_level: str = "warning") -> None:
    """Serve the ledger in ``db_path`` on ``host:port``; blocks until told to stop."""
    store = LedgerStore(db_path)
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
                uvicorn.Server(config).run()
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
