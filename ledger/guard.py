"""Slow clients cut, connections capped: uvicorn's HTTP/1.1 protocol with deadlines.

uvicorn (0.55, h11) has no header-read or body-read timeout: ``timeout_keep_alive``
is armed only after a response and cancelled by the next byte, so a client that
sends half a head, or 9 bytes of a 100-byte body, holds its socket for ever;
``h11_max_incomplete_event_size`` bounds a head's size, not its time; and
``limit_concurrency`` answers 503 but keeps every socket open. About 1,100 such
sockets exhaust a 1024 descriptor limit and every other agent then times out.

`GuardedH11Protocol` is uvicorn's own protocol with three rules added, so
TLS, ``--workers`` and everything uvicorn does stay as they are:

- a request head must be complete within ``head_timeout_s`` of the connection
  opening (or of the previous response): an absolute deadline, so trickling a
  byte at a time does not extend it;
- while a body is being received, ``body_idle_s`` without a byte cuts it;
- past ``max_connections`` (set below the descriptor limit), a new connection
  closes the oldest one still waiting for its head; one that is running a
  request is never cut for it, and if every connection is busy the newcomer is
  closed instead. So a flood of half-open heads costs its senders their
  sockets, not the agents that send whole requests.

The limits travel in `GuardedConfig` (picklable, so ``--workers`` hands them
to each worker process); nothing here is global.
"""

from __future__ import annotations

import asyncio
import resource
import time
from dataclasses import dataclass
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

# Descriptors kept back from the cap: the database (and its WAL), the pool's
# connections, the listening socket, logs, and the threadpool's files.
FD_RESERVE = 64
# asyncio accepts up to ``backlog`` sockets per wake-up before any of their
# protocols sees ``connection_made`` (where the cap is enforced, one loop
# iteration later), and a connection aborted there frees its descriptor only an
# iteration after that (``connection_lost`` is scheduled, not run). Under a
# flood that reconnects at once, three bursts are in flight beyond the cap: one
# accepted and not yet counted, one counted, one aborted and not yet closed. The
# cap leaves room for four, so ``accept()`` never meets EMFILE (which pauses
# accepting for a second, for everyone). Room for two bursts of 128 was seen to
# fall short once in a full-suite run (bench.attack's test).
BACKLOG = 64
BURSTS = 4


@dataclass(frozen=True, slots=True)
class GuardLimits:
    head_timeout_s: float = 5.0
    body_idle_s: float = 10.0
    max_connections: int = 0  # 0: from the process's descriptor limit

    def resolved(self) -> GuardLimits:
        """The limits with ``max_connections`` set from RLIMIT_NOFILE when it is 0."""
        if self.max_connections > 0:
            return self
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return GuardLimits(self.head_timeout_s, self.body_idle_s, 4096)
        cap = max(16, soft - FD_RESERVE - BURSTS * BACKLOG)
        return GuardLimits(self.head_timeout_s, self.body_idle_s, cap)


class GuardedConfig(uvicorn.Config):
    """uvicorn's Config carrying the guard's limits to the protocol of each connection."""

    def __init__(self, app: Any, *, guard: GuardLimits, **kwargs: Any) -> None:
        super().__init__(app, http=GuardedH11Protocol, backlog=BACKLOG, **kwargs)
        self.guard = guard.resolved()


class GuardedH11Protocol(H11Protocol):
    """See the module docstring."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        limits = getattr(config, "guard", None)
        self._limits = limits if isinstance(limits, GuardLimits) else GuardLimits().resolved()
        self._timer: asyncio.TimerHandle | None = None
        self._waiting_since = time.monotonic()  # when it began waiting for a head

    # -- asyncio.Protocol -------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._waiting_since = time.monotonic()
        if len(self.connections) > self._limits.max_connections:
            self._make_room()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        waiting = self.conn.their_state is h11.IDLE
        super().data_received(data)
        if waiting and self.conn.their_state is h11.IDLE:
            # Still no complete head: the deadline set when it began waiting stands.
            if self._timer is None and not self.transport.is_closing():
                self._arm()
            return
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._waiting_since = time.monotonic()
        self._arm()

    # -- the rules ----------------------------------------------------------------

    def _waiting_for_head(self) -> bool:
        return self.conn.their_state is h11.IDLE and (
            self.cycle is None or self.cycle.response_complete
        )

    def _arm(self) -> None:
        """Set the one timer this connection's state calls for, or none."""
        self._disarm()
        if self.transport is None or self.transport.is_closing():
            return
        if self._waiting_for_head():
            left = self._limits.head_timeout_s - (time.monotonic() - self._waiting_since)
            self._timer = self.loop.call_later(max(0.0, left), self._expired)
        elif self.conn.their_state is h11.SEND_BODY:
            self._timer = self.loop.call_later(self._limits.body_idle_s, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self._waiting_for_head():
            self.transport.abort()
        elif self.conn.their_state is h11.SEND_BODY:
            if self.flow.read_paused:  # the app has not taken what it was sent yet
                self._arm()
            else:
                self.transport.abort()

    def _make_room(self) -> None:
        """Close the connection that has waited longest for a head; else this one."""
        oldest: GuardedH11Protocol | None = None
        for other in self.connections:
            if (
                other is not self
                and isinstance(other, GuardedH11Protocol)
                and other._waiting_for_head()
                and not other.transport.is_closing()
                and (oldest is None or other._waiting_since < oldest._waiting_since)
            ):
                oldest = other
        (oldest or self).transport.abort()
