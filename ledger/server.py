"""Run the reference ledger under uvicorn until SIGTERM or SIGINT.

uvicorn already stops gracefully on those signals (in-flight requests finish),
but then raises the signal again so the process dies of it; that would skip
closing the store and make systemd see a kill, not a stop. So ``serve``
installs quiet handlers for uvicorn to restore and returns normally.

With ``workers > 1`` (PostgreSQL only) uvicorn's supervisor shares one socket
among N worker processes and starts a worker again when one dies; each worker
opens its own store (its own connection pool) from `ServeOptions` handed over
in the environment, since uvicorn builds the app in the worker from an import
string.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette
from uvicorn.supervisors import Multiprocess

from agent import logs
from agent.logs import event
from ledger.app import SILENT_AFTER_S, create_app
from ledger.guard import GuardedConfig, GuardLimits
from ledger.schema import LedgerError
from ledger.store import LedgerUnavailable, SqlStore, is_postgres_url, open_store

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_ENV = "EDGETALLY_LEDGER_WORKER"
log = logging.getLogger("edgetally.ledger")


class _Server(uvicorn.Server):
    """uvicorn's server with our start line: where it listens, on what file, for whom."""

    def __init__(self, config: uvicorn.Config, store: SqlStore) -> None:
        super().__init__(config)
        self._store = store

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.should_exit or not self.servers:
            return  # the bind failed; serve() says so
        host, port = self.servers[0].sockets[0].getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        scheme = "https" if self.config.is_ssl else "http"
        event(
            log,
            "ledger_listening",
            url=f"{scheme}://{shown}:{port}",
            database=self._store.name.removeprefix("ledger "),
            agents=len({t.agent for t in self._store.tokens() if t.revoked_at is None}),
        )


@dataclass(frozen=True, slots=True)
class ServeOptions:
    db: str
    host: str = "127.0.0.1"
    port: int = 8600
    workers: int = 1
    password_file: str | None = None
    silent_after_s: float = SILENT_AFTER_S
    pool_size: int = 8
    log_level: str = "warning"
    tls_cert: str | None = None
    tls_key: str | None = None
    head_timeout_s: float = 5.0
    body_idle_s: float = 10.0
    max_connections: int = 0  # 0: below the process's descriptor limit
    alert_webhook: str | None = None  # low-stock alerts are POSTed here (ledger.valuation.alerts)

    def uvicorn_options(self) -> dict[str, object]:
        """What every uvicorn config of ours gets: the guard's limits, TLS, shutdown."""
        return {
            "guard": GuardLimits(self.head_timeout_s, self.body_idle_s, self.max_connections),
            "host": self.host,
            "port": self.port,
            "log_level": self.log_level,
            "lifespan": "on",
            "timeout_graceful_shutdown": 10,
            "ssl_certfile": self.tls_cert,
            "ssl_keyfile": self.tls_key,
        }


def serve(
    db_path: Path | str,
    host: str,
    port: int,
    log_level: str = "warning",
    *,
    workers: int = 1,
    password_file: Path | None = None,
    silent_after_s: float = SILENT_AFTER_S,
    pool_size: int = 8,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    head_timeout_s: float = 5.0,
    body_idle_s: float = 10.0,
    max_connections: int = 0,
    alert_webhook: str | None = None,
) -> None:
    """Serve the ledger in ``db_path`` (a SQLite file or a PostgreSQL URL) on ``host:port``;
    blocks until told to stop. Our JSON lines (the start line, one per batch) go to
    stdout; uvicorn's own log stays at ``log_level``."""
    opts = ServeOptions(
        db=str(db_path),
        host=host,
        port=port,
        workers=workers,
        password_file=None if password_file is None else str(password_file),
        silent_after_s=silent_after_s,
        pool_size=pool_size,
        log_level=log_level,
        tls_cert=None if tls_cert is None else str(tls_cert),
        tls_key=None if tls_key is None else str(tls_key),
        head_timeout_s=head_timeout_s,
        body_idle_s=body_idle_s,
        max_connections=max_connections,
        alert_webhook=alert_webhook,
    )
    if (tls_cert is None) != (tls_key is None):
        raise LedgerError("--tls-cert and --tls-key: give both (the certificate and its key)")
    for given in (tls_cert, tls_key):
        if given is not None and not Path(given).is_file():
            raise LedgerError(f"{given}: no such file (a PEM certificate or key for TLS)")
    if workers > 1 and not is_postgres_url(opts.db):
        raise LedgerError(
            f"--workers {workers}: several ledger processes need a PostgreSQL --db "
            "(postgresql://…); a SQLite file has one writer"
        )
    # Open (and migrate) once here, so a bad --db is one clear error before any worker starts.
    store = _open(opts)
    logs.setup("info")
    if workers > 1:
        store.close()
        _serve_workers(opts)
        return
    try:
        config = GuardedConfig(_app(store, opts), **opts.uvicorn_options())  # type: ignore[arg-type]
        with _stop_quietly():
            try:
                _Server(config, store).run()
            except SystemExit as exc:  # uvicorn's answer to a failed bind
                raise LedgerError(f"the ledger could not listen on {host}:{port}") from exc
    finally:
        store.close()


def _open(opts: ServeOptions) -> SqlStore:
    password_file = None if opts.password_file is None else Path(opts.password_file)
    db: str | Path = opts.db if is_postgres_url(opts.db) else Path(opts.db)
    return open_store(db, password_file, opts.pool_size)


def _serve_workers(opts: ServeOptions) -> None:
    os.environ[_ENV] = json.dumps(asdict(opts))
    config = GuardedConfig(
        "ledger.server:worker_app",
        factory=True,
        workers=opts.workers,
        **opts.uvicorn_options(),  # type: ignore[arg-type]
    )
    try:
        sock = config.bind_socket()
    except SystemExit as exc:
        raise LedgerError(f"the ledger could not listen on {opts.host}:{opts.port}") from exc
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()


def worker_app() -> Starlette:
    """The app of one worker process; its lifespan opens and closes the worker's store."""
    opts = ServeOptions(**json.loads(os.environ[_ENV]))
    holder: list[SqlStore] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with _watching(holder[0], opts.silent_after_s, opts.alert_webhook):
            yield
        holder[0].close()

    store = _open(opts)
    holder.append(store)
    return create_app(store, silent_after_s=opts.silent_after_s, lifespan=lifespan)


def _app(store: SqlStore, opts: ServeOptions) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with _watching(store, opts.silent_after_s, opts.alert_webhook):
            yield

    return create_app(store, silent_after_s=opts.silent_after_s, lifespan=lifespan)


@asynccontextmanager
async def _watching(
    store: SqlStore, silent_after_s: float, alert_webhook: str | None = None
) -> AsyncIterator[None]:
    """The silent-agent watchdog and the alert webhook's sender, owned by the server's
    lifespan and stopped with it.

    Every process runs one; the alarm table keeps each silence once. With
    several processes the webhook may see an alert twice (each process drains
    the outbox); a receiver keys on the payload.
    """

    async def watch() -> None:
        period = max(1.0, min(30.0, silent_after_s / 4))
        while True:
            await asyncio.sleep(period)
            try:
                await asyncio.to_thread(store.check_silence, silent_after_s)
            except LedgerUnavailable as exc:
                log.warning("silence check skipped: %s", exc)

    async with contextlib.AsyncExitStack() as stack:
        tasks = [asyncio.create_task(watch())]
        if alert_webhook is not None:
            from ledger.valuation.alerts import AlertSender

            client = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
            tasks.append(asyncio.create_task(AlertSender(store, alert_webhook, client).run()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task


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
