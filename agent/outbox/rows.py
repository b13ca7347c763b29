"""Outbox records, and the building of rows: plain values, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.errors import OutboxError
from agent.model import MAX_REF_BYTES, Movement, Read, check_limits, dumps


@dataclass(frozen=True, slots=True)
class CancelTarget:
    """A movement a CANCEL undoes, with the reversal to post if it may have been delivered.

    ``reversal`` is None when the movement cannot be reversed (a delivered
    count); ``why_not`` then says what to do instead.
    """

    movement_id: str
    reversal: Movement | None
    why_not: str | None = None


@dataclass(frozen=True, slots=True)
class CancelResult:
    """What the outbox did for a CANCEL, decided in the transaction that stores it."""

    cancelled: tuple[str, ...] = ()  # never handed to the ledger: marked cancelled
    reversed: tuple[str, ...] = ()  # handed out or delivered: the reversal was stored
    refused: tuple[str, ...] = ()  # why some could not be undone

    def describe(self) -> str:
        parts = []
        if self.cancelled:
            parts.append(f"cancelled before delivery ({len(self.cancelled)})")
        if self.reversed:
            parts.append(f"reversed: delivered already ({len(self.reversed)})")
        parts.extend(self.refused)
        return "; ".join(parts) or "nothing to cancel"


@dataclass(frozen=True, slots=True)
class Commit:
    """One read, the movements it produced and the station state it changed.

    ``state`` maps station -> key -> JSON value, or None to delete the key.
    ``read`` may be None for movements made without a read (a CANCEL reversal).
    ``cancel`` lists movements to cancel (or reverse) in the same transaction.
    """

    read: Read | None
    movements: Sequence[Movement] = ()
    state: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    outcome: str | None = None
    cancel: Sequence[CancelTarget] = ()


@dataclass(frozen=True, slots=True)
class Stored:
    """The result of one Commit: the movements as stored (with seq), or why it was refused.

    ``movements`` includes the reversals a CANCEL stored; ``cancel`` says what it did.
    """

    movements: tuple[Movement, ...] = ()
    error: Exception | None = None
    cancel: CancelResult | None = None


@dataclass(frozen=True, slots=True)
class Pending:
    seq: int
    id: str
    payload: str
    created_at: float
    kind: str = ""


@dataclass(frozen=True, slots=True)
class SyncState:
    attempts: int = 0
    next_attempt_at: float | None = None
    last_success_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None


@dataclass(frozen=True, slots=True)
class OutboxStats:
    pending: int
    delivered: int
    rejected: int
    reads: int
    oldest_pending_created_at: float | None
    used_bytes: int
    max_bytes: int
    next_seq: int


ROW_OVERHEAD = 400  # bytes a read and its movement cost beyond their payloads (indexes, headers)


class Careful(Exception):
    """The fast path hit an SQLite error: run the job again, one savepoint per commit."""


def render(commits: Sequence[Commit]) -> list[list[str] | OutboxError]:
    """Each movement's JSON without its seq, made on the caller's thread, not the writer's.

    The writer puts ``"seq":N`` first in the object; JSON key order carries no
    meaning. A commit's movements come first, then the reversals its CANCEL
    may store. A commit whose movements cannot be encoded is refused, not raised.
    """
    out: list[list[str] | OutboxError] = []
    for commit in commits:
        bodies = []
        try:
            for m in (*commit.movements, *reversals(commit)):
                d = m.to_dict()
                del d["seq"]
                body = dumps(d)
                if m.ref or len(body) > MAX_REF_BYTES:  # the ledger's caps, refused here
                    check_limits(m)
                bodies.append(body)
        except ValueError as exc:
            out.append(OutboxError(f"movement {m.id} not stored: {exc}"))
            continue
        out.append(bodies)
    return out


def reversals(commit: Commit) -> list[Movement]:
    return [t.reversal for t in commit.cancel if t.reversal is not None]


@dataclass(frozen=True, slots=True)
class Done:
    """What the writer did for one commit: the seqs it gave, and the movements they went to."""

    seqs: range
    movements: tuple[Movement, ...]
    cancel: CancelResult | None = None


def stored_results(commits: Sequence[Commit], done: list[Done | Exception]) -> list[Stored]:
    out = []
    for result in done:
        if isinstance(result, Exception):
            out.append(Stored(error=result))
        else:
            out.append(
                Stored(
                    movements=tuple(
                        m.with_seq(seq)
                        for m, seq in zip(result.movements, result.seqs, strict=True)
                    ),
                    cancel=result.cancel,
                )
            )
    return out


def uuid7_floor(ts: float) -> str:
    """The smallest UUIDv7 text for wall time ``ts``: ids below it are older."""
    h = f"{max(0, int(ts * 1000)):012x}"
    return f"{h[:8]}-{h[8:12]}-"
