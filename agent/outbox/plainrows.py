"""The rows of plain reads (no movement, no state), inserted many to a statement.

An RFID portal stores tens of thousands of reads a second that move nothing;
at 1000 tags in the field each is its own row. ``executemany`` binds all 18
columns of every row and steps SQLite once per row. Here the reads of a job
that share device, kind, symbology and boot (all of one reader's, as a rule)
go in as one ``INSERT … SELECT … FROM (VALUES …)`` per up to 512 rows: the
shared values and ``created_at`` bound once, eleven per row (id, data,
antenna, rssi, seen_count, the reader's first and last stamps, observed_at,
mono_ns, the reader's clock offset, outcome). Measured on the dev box, a row
costs about half of what it did through ``executemany``.

Few statements matter as much as few bindings: the writer thread gives up the
GIL for each statement's SQLite work and must win it back from a busy event
loop after each (up to the 5 ms switch interval). Runs that span the reports
of a job (observed_at and mono_ns are per report, so they are bound per row)
took the bench's pipeline from ~17.8 to ~16.3 CPU µs per tag read against
runs cut at each report.

The rows are the same rows, with the same values and types (a VALUES column
keeps the type of what was bound; the table's affinity applies as for any
insert). A run is cut into statements of 512, 256, … 1 rows, so the
connection's statement cache holds ten texts, not one per run length; 512
rows are 5,637 parameters, far under SQLite's 32,766.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from operator import attrgetter
from typing import Any

from agent.outbox.rows import Commit

_COLUMNS = (
    "id, device, kind, data, symbology, antenna, rssi, seen_count, observed_at, mono_ns,"
    " boot_id, outcome, first_seq, last_seq, created_at, reader_first_seen_us,"
    " reader_last_seen_us, reader_offset_us"
)
# What the reads of a run share, in the order of ?1..?4; ?5 is created_at.
_shared = attrgetter("device", "kind", "symbology", "boot_id")
# A row's own values, VALUES columns 1..10; column11 is the outcome.
_own = attrgetter(
    "id",
    "data",
    "antenna",
    "rssi",
    "seen_count",
    "reader_first_seen_us",
    "reader_last_seen_us",
    "observed_at",
    "mono_ns",
    "reader_offset_us",
)
_PER_ROW = 11
_ROW = "(" + ", ".join(["?"] * _PER_ROW) + ")"
CHUNKS = (512, 256, 128, 64, 32, 16, 8, 4, 2, 1)


def _statement(rows: int) -> str:
    return (
        f"INSERT INTO reads({_COLUMNS})"
        " SELECT column1, ?1, ?2, column2, ?3, column3, column4, column5, column8, column9,"
        " ?4, column11, NULL, NULL, ?5, column6, column7, column10"
        f" FROM (VALUES {', '.join([_ROW] * rows)})"
    )


_STATEMENTS = {n: _statement(n) for n in CHUNKS}


def insert_plain(conn: sqlite3.Connection, commits: Sequence[Commit], now: float) -> None:
    """Insert the reads of commits with a read (and no seqs) with their outcomes, in order;
    ``created_at`` = ``now``."""
    i, n = 0, len(commits)
    while i < n:
        shared = _shared(commits[i].read)
        values: list[Any] = []
        j = i
        while j < n:
            commit = commits[j]
            read = commit.read
            if j > i and _shared(read) != shared:
                break
            values.extend(_own(read))
            values.append(commit.outcome)
            j += 1
        head = [*shared, now]
        at, left = 0, j - i
        for size in CHUNKS:
            while left >= size:
                conn.execute(_STATEMENTS[size], head + values[at : at + size * _PER_ROW])
                at += size * _PER_ROW
                left -= size
        i = j
