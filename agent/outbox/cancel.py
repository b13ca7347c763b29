"""CANCEL: cancel what the syncer was never given, reverse what it may have sent."""

from __future__ import annotations

import functools

from agent.outbox.core import OutboxCore
from agent.outbox.rows import CancelResult, Commit
from agent.outbox.writer import Transaction


class Cancelling(OutboxCore):
    """Decides CANCELs inside the store job, under the lock ``pending()`` also takes."""

    def _cancel(
        self, tx: Transaction, commit: Commit, now: float
    ) -> tuple[CancelResult, set[str], list[int]]:
        """Cancel what the syncer was never given; reverse the rest. Returns reversal ids to store.

        The syncer takes movements in seq order through ``pending()``, which
        records the highest seq it handed out and skips seqs in
        ``_cancelling``, all under ``_flight_lock``. Deciding here under the
        same lock makes "cancel if never handed out, else reverse" atomic with
        respect to a batch being taken: a movement in a batch in flight (or
        sent before a restart, whose answer may be lost) is reversed, never
        cancelled behind the ledger's back. Nothing is deleted: a cancelled
        movement stays, in state ``cancelled`` with the cancelling read's id.
        """
        conn = tx.conn
        read_id = commit.read.id if commit.read else None
        cancelled: list[str] = []
        reversed_: list[str] = []
        refused: list[str] = []
        chosen: set[str] = set()
        marked: list[int] = []
        with self._flight_lock:
            for target in commit.cancel:
                row = conn.execute(
                    "SELECT seq, state FROM movements WHERE id = ?", (target.movement_id,)
                ).fetchone()
                if row is None:
                    refused.append(f"{target.movement_id} is no longer in the outbox")
                    continue
                seq, state = row
                if state == "pending" and seq > self._handed_out:
                    conn.execute(
                        "UPDATE movements SET state = 'cancelled', settled_at = ?,"
                        " cancelled_by = ? WHERE seq = ?",
                        (now, read_id, seq),
                    )
                    self._cancelling.add(seq)
                    marked.append(seq)
                    tx.on_rollback(functools.partial(self._uncancel, seq, True))
                    tx.on_commit(functools.partial(self._uncancel, seq))
                    self.pending_count -= 1
                    cancelled.append(target.movement_id)
                elif state in ("pending", "delivered"):
                    if target.reversal is None:
                        refused.append(target.why_not or f"{target.movement_id} cannot be reversed")
                    else:
                        chosen.add(target.reversal.id)
                        reversed_.append(target.movement_id)
                else:  # rejected or cancelled: it never changed the ledger
                    refused.append(f"{target.movement_id} was {state}: nothing to undo")
        return CancelResult(tuple(cancelled), tuple(reversed_), tuple(refused)), chosen, marked

    def _uncancel(self, seq: int, rolled_back: bool = False) -> None:
        with self._flight_lock:
            self._cancelling.discard(seq)
            if rolled_back:
                self.cancel_rollbacks += 1
