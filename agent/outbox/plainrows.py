"""The rows of plain reads (no movement, no state), inserted a report at a time.

An RFID portal stores tens of thousands of reads a second that move nothing;
at 1000 tags in the field each is its own row. ``executemany`` binds all 18
columns of every row, yet the reads of one report share most of them (device,
kind, symbology, observed_at, mono_ns, boot_id, the reader's clock offset)
and every row of a job shares ``created_at``. So a run of reads that share
those values goes in as one ``INSERT … SELECT … FROM (VALUES …)``: the shared
values bound once, eight per row (id, data, antenna, rssi, seen_count, the
reader's first and last stamps, outcome). Measured on the dev box, it is about
half of what SQLite and the binding cost a row through ``executemany``.

The rows are the same rows, with the same values and types (a VALUES column
keeps the type of what was bound; the table's affinity applies as for any
insert). A run is cut into statements of 64, 32, … 1 rows, so the
connection's statement cache holds seven texts, not one per run length.
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
# What the reads of a run share, in the order of ?1..?7; ?8 is created_at.
_shared = attrgetter(
    "device", "kind", "symbology", "observed_at", "mono_ns", "boot_id", "reader_offset_us"
)
# A row's own values, VALUES columns 1..7; column8 is the outcome.
_own = attrgetter(
    "id", "data", "antenna", "rssi", "seen_count", "reader_first_seen_us", "reader_last_seen_us"
)
_PER_ROW = 8
_ROW = "(" + ", ".join(["?"] * _PER_ROW) + ")"
CHUNKS = (64, 32, 16, 8, 4, 2, 1)


def _statement(rows: int) -> str:
    return (
        f"INSERT INTO reads({_COLUMNS})"
        " SELECT column1, ?1, ?2, column2, ?3, column3, column4, column5, ?4, ?5,"
        " ?6, column8, NULL, NULL, ?8, column6, column7, ?7"
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
