"""Closing the outbox while a read runs in another thread (a sync loop's ``pending``
whose task was cancelled at shutdown) waits for that read: closing the connection
under a running statement crashed the process (SIGSEGV) in full-suite runs."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from agent.outbox import Outbox


def test_close_waits_for_a_read_running_in_another_thread(tmp_path: Path) -> None:
    box = Outbox.open(tmp_path / "outbox.db", "dock-7", 1 << 20)
    closer = threading.Thread(target=box.close)
    still_open: list[bool] = []

    def read(conn: sqlite3.Connection) -> None:
        closer.start()  # the shutdown, while this read runs
        closer.join(0.5)  # room for a close that does not wait to finish
        # the connection is still ours: before, it was closed under this read
        still_open.append(conn.execute("SELECT count(*) FROM movements").fetchone() == (0,))

    box._read(read)
    closer.join()
    assert still_open == [True]
