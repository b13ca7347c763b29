"""`edgetally outbox list|export|retry`: what the outbox holds, for a person or a script.

Listing and export read through a read-only connection (safe while the agent
runs: WAL readers never block the writer). Retry changes movements, so it
goes through the outbox's own writer and its lock: with the agent running it
is refused, and says so, rather than writing beside it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from agent.errors import OutboxError
from agent.outbox.queries import connect
from agent.outbox.store import Outbox
from agent.outbox.writer import Transaction

State = Literal["pending", "delivered", "rejected", "cancelled"]
STATES: tuple[State, ...] = ("pending", "delivered", "rejected", "cancelled")


def _reader(path: Path) -> sqlite3.Connection:
    if not path.exists():
        raise OutboxError(f"no outbox at {path}: has the agent run with this config?")
    try:
        return connect(path, readonly=True)
    except sqlite3.Error as exc:
        raise OutboxError(f"cannot read the outbox {path}: {exc}") from exc


def count_movements(path: Path, state: State | None = None, since_seq: int = 0) -> int:
    """How many movements ``list_movements`` could show (its "50 of 60 shown")."""
    conn = _reader(path)
    try:
        (n,) = conn.execute(
            "SELECT count(*) FROM movements WHERE seq > ? AND (? IS NULL OR state = ?)",
            (since_seq, state, state),
        ).fetchone()
    except sqlite3.Error as exc:
        raise OutboxError(f"cannot read the outbox {path}: {exc}") from exc
    finally:
        conn.close()
    return int(n)


def list_movements(
    path: Path,
    state: State | None = None,
    limit: int = 50,
    since_seq: int = 0,
    newest_first: bool = False,
    sinks: tuple[str, ...] = ("ledger",),
) -> list[dict[str, Any]]:
    """Movements from ``since_seq`` on, in seq order or newest first: the columns a person
    needs to act, and each configured sink's state of each (``sinks``)."""
    conn = _reader(path)
    order = "DESC" if newest_first else "ASC"
    try:
        rows = conn.execute(
            "SELECT seq, id, kind, state, attempts, last_error, created_at, payload"
            " FROM movements WHERE seq > ? AND (? IS NULL OR state = ?)"
            f" ORDER BY seq {order} LIMIT ?",
            (since_seq, state, state, limit),
        ).fetchall()
        per_sink = _sink_states(conn, [r[0] for r in rows])
    except sqlite3.Error as exc:
        raise OutboxError(f"cannot read the outbox {path}: {exc}") from exc
    finally:
        conn.close()
    out = []
    for seq, mid, kind, st, attempts, error, created_at, payload in rows:
        body = json.loads(payload)
        item = body.get("item", {})
        out.append(
            {
                "seq": seq,
                "id": mid,
                "kind": kind,
                "state": st,
                "item": item.get("gtin") or item.get("sku") or item.get("sscc") or item.get("epc"),
                "qty": body.get("qty"),
                "from": body.get("from"),
                "to": body.get("to"),
                "station": body.get("station"),
                "ref": body.get("ref") or {},
                "observed_at": body.get("observed_at"),
                "attempts": attempts,
                "error": error,
                "created_at": created_at,
                "sinks": {
                    name: per_sink.get((seq, name), "-" if st == "cancelled" else st)
                    for name in sinks
                },
            }
        )
    return out


def _sink_states(conn: sqlite3.Connection, seqs: list[int]) -> dict[tuple[int, str], str]:
    """Per (seq, sink), the state a sink recorded before the others had the movement.

    A sink with no row has the movement's own state: pending until every sink
    has it, then what they all answered (see migration 0004_sinks).
    """
    if not seqs:
        return {}
    return {
        (seq, sink): state
        for seq, sink, state in conn.execute(
            "SELECT seq, sink, state FROM deliveries WHERE seq BETWEEN ? AND ?",
            (min(seqs), max(seqs)),
        )
    }


_COLUMNS = ("seq", "state", "kind", "item", "qty", "from -> to", "ref", "observed (UTC)", "station")


def table_lines(rows: list[dict[str, Any]]) -> list[str]:
    """``outbox list`` for a person: a header, then one line per movement; the ledger's
    reason (or the last error and attempts) after the columns. Columns are as wide as
    their widest value, so GTINs, SSCCs and EPCs are never cut. With several sinks,
    one more column per sink says where each movement stands there."""
    names = list(rows[0].get("sinks", {})) if rows else []
    if len(names) < 2:
        names = []
    columns = (*_COLUMNS, *names)
    cells = [
        (
            str(r["seq"]),
            r["state"],
            r["kind"],
            r["item"] or ("(location)" if r["kind"] == "count_close" else "?"),
            str(r["qty"]),
            f"{r['from'] or '-'} -> {r['to'] or '-'}",
            " ".join(f"{k}={v}" for k, v in sorted(r["ref"].items())) or "-",
            (r["observed_at"] or "-").replace("T", " ").rstrip("Z")[:19],
            r["station"] or "-",
            *(r["sinks"][n] for n in names),
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in [columns, *cells]) for i in range(len(columns))]
    right = {0, 4}  # numbers

    def line(values: tuple[str, ...]) -> str:
        return "  ".join(
            v.rjust(w) if i in right else v.ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    out = [line(columns)]
    for r, c in zip(rows, cells, strict=True):
        why = ""
        if r["error"]:
            tries = f"{r['attempts']} attempt(s): " if r["state"] == "pending" else ""
            why = f"  ({tries}{r['error']})"
        out.append(line(c) + why)
    return out


def export_movements(path: Path, state: State | None = None, since_seq: int = 0) -> Iterator[str]:
    """Every movement as the ledger receives it, one JSON line each, with its outbox state.

    Streamed in pages, so a million movements never sit in memory at once.
    """
    conn = _reader(path)
    try:
        last = since_seq
        while True:
            page = conn.execute(
                "SELECT seq, state, payload FROM movements"
                " WHERE seq > ? AND (? IS NULL OR state = ?) ORDER BY seq LIMIT 1000",
                (last, state, state),
            ).fetchall()
            if not page:
                return
            for seq, st, payload in page:
                body = json.loads(payload)
                body["outbox_state"] = st
                yield json.dumps(body, sort_keys=True, ensure_ascii=False)
                last = seq
    except sqlite3.Error as exc:
        raise OutboxError(f"cannot read the outbox {path}: {exc}") from exc
    finally:
        conn.close()


def retry_rejected(outbox: Outbox, seqs: list[int] | None) -> int:
    """Rejected movements (all, or those of ``seqs``) back to pending; how many.

    For when the reason is fixed at the ledger (an unknown item added to its
    master data). They go out again in seq order with the next batch, to the
    sinks that refused them; a sink that delivered one keeps it (its row in
    ``deliveries`` stays). A movement rejected before several sinks (no rows)
    goes again to every configured sink.
    """

    def job(tx: Transaction) -> int:
        conn = tx.conn
        where = "state = 'rejected'" if seqs is None else "state = 'rejected' AND seq = ?"
        conn.executemany(
            f"DELETE FROM deliveries WHERE state = 'rejected' AND seq IN"
            f" (SELECT seq FROM movements WHERE {where})",
            [()] if seqs is None else [(s,) for s in seqs],
        )
        before = conn.total_changes
        if seqs is None:
            conn.execute(
                "UPDATE movements SET state = 'pending', attempts = 0, last_error = NULL,"
                " settled_at = NULL WHERE state = 'rejected'"
            )
        else:
            conn.executemany(
                "UPDATE movements SET state = 'pending', attempts = 0, last_error = NULL,"
                " settled_at = NULL WHERE seq = ? AND state = 'rejected'",
                [(s,) for s in seqs],
            )
        changed = conn.total_changes - before
        pending_before = outbox.pending_count
        outbox.pending_count += changed
        tx.on_rollback(lambda: setattr(outbox, "pending_count", pending_before))
        return changed

    return outbox.submit_blocking(job)
