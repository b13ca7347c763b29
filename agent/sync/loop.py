"""The sync task: drain the outbox in seq order to a sink, exactly once at the ledger.

Batches are sent as soon as movements exist (no batch window). A movement is
marked delivered only on the ledger's answer; a lost answer means a resend,
which the ledger answers ``duplicate``. One request is in flight at a time, so
the ledger sees each agent's movements in seq order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_never

from agent.alarms import Alarms
from agent.clock import Uuid7
from agent.errors import (
    LedgerAuth,
    LedgerMisconfigured,
    LedgerRejected,
    OutboxError,
    PayloadTooLarge,
    SyncTransient,
)
from agent.logs import event
from agent.metrics import Metrics
from agent.outbox import Outbox, Pending
from agent.sync.http_ledger import Result
from agent.sync.policy import RetryPolicy
from agent.sync.registry import Sink

log = logging.getLogger("edgetally.sync")
Sleep = Callable[[float], Awaitable[None]]


@dataclass
class SyncStatus:
    last_success_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    delivered: int = 0
    rejected: int = 0
    retries: int = 0
    # The failures since the last answer from the ledger (health: is it down?).
    failed_attempts: int = 0
    failing_since: float | None = None


class Syncer:
    """One sink's delivery: its own batches, retry, backoff state, status and alarms.

    With several sinks each has a Syncer of its own, named after it: one sink
    down never holds another back. The first sink (``primary``) also moves the
    agent-wide metrics and alarm names of the days of one sink; every Syncer
    moves the metrics labelled with its sink, and other sinks' alarms carry the
    sink's name (``sync_stalled:mqtt``).
    """

    def __init__(
        self,
        outbox: Outbox,
        sink: Sink,
        policy: RetryPolicy,
        alarms: Alarms,
        batch_max: int = 500,
        batch_max_bytes: int = 1 << 20,
        stall_alarm_s: float = 600.0,
        sleep: Sleep = asyncio.sleep,
        wall: Callable[[], float] = time.time,
        ids: Uuid7 | None = None,
        idle_poll_s: float = 5.0,
        metrics: Metrics | None = None,
        name: str = "ledger",
        primary: bool = True,
        kind: str = "http-ledger",
    ) -> None:
        self.name = name
        self.kind = kind
        self.primary = primary
        self.outbox = outbox
        self.sink = sink
        self.policy = policy
        self.alarms = alarms
        self.batch_max = batch_max
        self.batch_max_bytes = batch_max_bytes
        self.stall_alarm_s = stall_alarm_s
        self.limit = batch_max
        self._sleep = sleep
        self._wall = wall
        self._ids = ids or Uuid7(wall)
        self._idle_poll_s = idle_poll_s
        self.status = SyncStatus()
        self.metrics = metrics or Metrics()
        self.oldest_pending_at: float | None = None  # created_at of the backlog's head
        # Failed attempts so far, as the outbox stores them; read from it once, then
        # kept here as this loop writes it, so a batch costs no extra query.
        self._attempts: int | None = None
        self._settle_failures = 0  # in a row: the outbox could not record the ledger's answer
        self.waits: list[float] = []  # every retry wait chosen, newest last (bounded)
        # Several sinks: the last seq this sink settled, so the next query starts
        # there rather than scanning past all it has while another sink is behind.
        # Dropped when a CANCEL rolled back after its seq was skipped (it is pending
        # again, below the mark).
        self._after = 0
        self._rollbacks = outbox.cancel_rollbacks

    def _alarm_key(self, key: str) -> str:
        return key if self.primary else f"{key}:{self.name}"

    def _pending(self) -> list[Pending]:
        """The next batch for this sink (runs in a thread)."""
        box = self.outbox
        if len(box.sinks) == 1:
            return box.pending(0, self.limit, self.batch_max_bytes, sink=self.name)
        if box.cancel_rollbacks != self._rollbacks:
            self._rollbacks, self._after = box.cancel_rollbacks, 0
        return box.pending(self._after, self.limit, self.batch_max_bytes, sink=self.name)

    async def run(self) -> None:
        """Run until cancelled. Cancelling mid-request is safe: the resend is a duplicate."""
        new_work = self.outbox.subscribe()
        try:
            await self._respect_stored_backoff()
            while True:
                new_work.clear()
                batch = await asyncio.to_thread(self._pending)
                self._check_stall(batch)
                if not batch:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(new_work.wait(), self._idle_poll_s)
                    continue
                await self.deliver(batch)
        finally:
            self.outbox.unsubscribe(new_work)

    async def drain(self) -> None:
        """Deliver everything pending now, then return (tools and tests)."""
        while batch := await asyncio.to_thread(self._pending):
            await self.deliver(batch)

    async def _respect_stored_backoff(self) -> None:
        state = await asyncio.to_thread(self.outbox.sync_state, self.name)
        self._attempts = state.attempts
        if state.next_attempt_at is not None:
            delay = min(state.next_attempt_at - self._wall(), self.policy.cap_s)
            if delay > 0:
                event(
                    log,
                    "sync_backoff_resumed",
                    sink=self.name,
                    wait_s=round(delay, 3),
                    attempts=state.attempts,
                )
                await self._sleep(delay)

    async def deliver(self, batch: Sequence[Pending]) -> bool:
        """Deliver one batch: retry transients, halve on 413, bisect a refused batch.

        True when all of it is settled. A half that is not stops the other half:
        a sink takes its movements in seq order.
        """
        try:
            results = await self._send_with_retry(batch)
        except PayloadTooLarge as exc:
            if len(batch) == 1:
                return await self._reject(batch, f"too large for the {self.name} sink: {exc}")
            self.limit = max(1, len(batch) // 2)
            event(log, "sync_batch_halved", level=logging.WARNING, sink=self.name, limit=self.limit)
            return False  # the caller fetches again with the smaller limit
        except LedgerRejected as exc:
            if len(batch) == 1:
                return await self._reject(batch, str(exc))
            half = len(batch) // 2
            return await self.deliver(batch[:half]) and await self.deliver(batch[half:])
        if not await self._settle(batch, results):
            return False
        self.limit = min(self.batch_max, self.limit * 2)
        return True

    async def _send_with_retry(self, batch: Sequence[Pending]) -> list[Result]:
        if self._attempts is None:
            self._attempts = (await asyncio.to_thread(self.outbox.sync_state, self.name)).attempts
        base_attempts = self._attempts
        batch_id = self._ids.new()
        seqs = [p.seq for p in batch]

        async def before_sleep(rs: RetryCallState) -> None:
            error = rs.outcome.exception() if rs.outcome is not None else None
            wait = rs.next_action.sleep if rs.next_action is not None else 0.0
            attempts = base_attempts + rs.attempt_number
            message = str(error)
            self.waits.append(wait)
            del self.waits[:-1000]
            self.status.retries += 1
            if self.primary:
                self.metrics.retries.inc()
            self.metrics.sink_retries.labels(self.name).inc()
            self.status.last_error, self.status.last_error_at = message, self._wall()
            self.status.failed_attempts += 1
            if self.status.failing_since is None:
                self.status.failing_since = self._wall()
            event(
                log,
                "sync_failed",
                level=logging.WARNING,
                sink=self.name,
                error=message,
                attempt=attempts,
                wait_s=round(wait, 3),
                batch=len(batch),
                first_seq=seqs[0],
            )
            if isinstance(error, LedgerMisconfigured):
                key = "ledger_auth" if isinstance(error, LedgerAuth) else "ledger_config"
                self.alarms.raise_(self._alarm_key(key), message)
            self._check_stall(batch)
            try:
                await self.outbox.record_failure(
                    seqs, message, attempts, self._wall() + wait, sink=self.name
                )
            except OutboxError as exc:
                # A full disk: the count lives on in memory; only a restart would forget it.
                event(log, "sync_state_not_saved", level=logging.ERROR, error=str(exc))
            self._attempts = attempts

        retrying = AsyncRetrying(
            retry=retry_if_exception_type((SyncTransient, LedgerMisconfigured)),
            wait=self.policy.tenacity_wait(base_attempts),
            stop=stop_never,
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt, self.metrics.sync_latency.time():
                return await self.sink.send(self.outbox.agent_id, batch, batch_id)
        raise AssertionError("unreachable: tenacity never stops")  # pragma: no cover

    async def _settle(self, batch: Sequence[Pending], results: list[Result]) -> bool:
        by_id = {r.id: r for r in results}
        rows: list[tuple[int, str, str | None]] = []
        for p in batch:
            r = by_id[p.id]
            if r.status == "rejected":
                reason = r.reason or f"rejected by the {self.name} sink without a reason"
                rows.append((p.seq, "rejected", reason))
                self._rejected_alarm(p, reason)
            else:
                rows.append((p.seq, "delivered", None))
        if not await self._store_settled(rows):
            return False
        delivered = sum(1 for _, s, _ in rows if s == "delivered")
        if self.primary:
            for p, (_, state, _) in zip(batch, rows, strict=True):
                self.metrics.movements.labels(p.kind, state).inc()
            self.metrics.last_success.set(self._wall())
        self.metrics.sink_movements.labels(self.name, "delivered").inc(delivered)
        self.metrics.sink_movements.labels(self.name, "rejected").inc(len(rows) - delivered)
        self.metrics.sink_last_success.labels(self.name).set(self._wall())
        self.status.delivered += delivered
        self.status.last_success_at = self._wall()
        self.status.failed_attempts, self.status.failing_since = 0, None
        self.alarms.clear(self._alarm_key("ledger_auth"))
        self.alarms.clear(self._alarm_key("ledger_config"))
        self._after = max(self._after, batch[-1].seq)
        return True

    async def _reject(self, batch: Sequence[Pending], reason: str) -> bool:
        for p in batch:
            self._rejected_alarm(p, reason)
        if not await self._store_settled([(p.seq, "rejected", reason) for p in batch]):
            return False
        if self.primary:
            for p in batch:
                self.metrics.movements.labels(p.kind, "rejected").inc()
        self.metrics.sink_movements.labels(self.name, "rejected").inc(len(batch))
        self.status.failed_attempts, self.status.failing_since = 0, None  # it answered
        self._after = max(self._after, batch[-1].seq)
        return True

    async def _store_settled(self, rows: list[tuple[int, str, str | None]]) -> bool:
        """The ledger answered: settling also resets the stored attempt count.

        When the outbox cannot record the answer (a full disk), the movements stay
        pending and are sent again after a growing wait: the ledger answers
        "duplicate" for what it has, so nothing is applied twice, and the agent
        does not die and crash-loop while the disk is full.
        """
        try:
            await self.outbox.settle(rows, sink=self.name)
        except OutboxError as exc:
            self._settle_failures += 1
            wait = self.policy.wait(self._settle_failures, None)
            event(
                log,
                "sync_settle_failed",
                level=logging.ERROR,
                sink=self.name,
                error=str(exc),
                wait_s=round(wait, 3),
            )
            self.alarms.raise_("outbox_refusing", f"delivered movements cannot be recorded: {exc}")
            self.waits.append(wait)
            await self._sleep(wait)
            return False
        self._settle_failures = 0
        self._attempts = 0
        return True

    def _rejected_alarm(self, p: Pending, reason: str) -> None:
        self.status.rejected += 1
        event(
            log,
            "movement_rejected",
            level=logging.ERROR,
            sink=self.name,
            seq=p.seq,
            id=p.id,
            reason=reason,
        )
        by = "the ledger" if self.primary and self.name == "ledger" else f"the {self.name} sink"
        self.alarms.raise_(
            self._alarm_key("rejected"),
            f"{self.status.rejected} movement(s) rejected by {by}; last: {reason}",
        )

    def _check_stall(self, batch: Sequence[Pending]) -> None:
        """Alarm when the oldest pending movement is older than ``stall_alarm_s``."""
        self.oldest_pending_at = batch[0].created_at if batch else None
        if not batch:
            self.alarms.clear(self._alarm_key("sync_stalled"))
            return
        age = self._wall() - batch[0].created_at
        if age > self.stall_alarm_s:
            self.alarms.raise_(
                self._alarm_key("sync_stalled"),
                f"{'' if self.primary else self.name + ': '}movements waiting longer than {self.stall_alarm_s:.0f}s; last error: "
                f"{self.status.last_error or 'none'}",
            )
