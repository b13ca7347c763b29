"""Disk full: the outbox on a filesystem that runs out of space, with the ledger down.

Where this machine lets the test mount one (root, and mount(8) works), the
outbox lives on an 8 MiB tmpfs whose free space is eaten by a ballast file:
SQLite then meets a real ENOSPC (SQLITE_FULL). Where it cannot mount, the
fallback is the outbox's own ceiling, SQLite's ``max_page_count`` (set from
``outbox.max_bytes``). The test reports which ran as the ``disk_full_via``
property (``pytest -rA`` shows it) and in its assertion messages.

Either way the agent must refuse new reads with a bad-read signal and an
alarm the operator hears, keep every read it acknowledged, keep running (no
crash, so no crash-loop under systemd), and take reads again once space
returns, without a restart.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.common import acknowledged_reads, delivery_report
from tests.e2e.harness import (
    LedgerProcess,
    gtin14,
    make_daemon,
    run_until_settled,
    write_config,
    write_script,
)

FS_BYTES = 8 << 20
LEFT_FREE = 256 << 10  # what the ballast leaves: a few dozen commits' worth
# A real ENOSPC stops the agent today (sync's record_failure raises OutboxFull and the
# daemon stops): tests/reliability/pending_diskfull.py runs the tmpfs case; until that is
# fixed the suite runs the max_page_count case only. Set to None to try tmpfs first.
FORCE_FALLBACK: str | None = None  # set to a reason to run only the max_page_count case


@dataclass
class SmallDisk:
    via: str  # "tmpfs" | "max_page_count"
    outbox: Path
    extra_outbox: str
    make_room: Callable[[], None]  # give space back


def _mount_tmpfs(where: Path) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={FS_BYTES},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


@pytest.fixture
def small_disk(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> Iterator[SmallDisk]:
    mount = tmp_path / "small"
    if FORCE_FALLBACK is None and _mount_tmpfs(mount):
        ballast = mount / "ballast"
        free = shutil.disk_usage(mount).free
        with ballast.open("wb") as f:
            f.write(b"\0" * (free - LEFT_FREE))
        record_property("disk_full_via", "tmpfs")
        try:
            yield SmallDisk("tmpfs", mount / "outbox.db", "", ballast.unlink)
        finally:
            subprocess.run(["umount", "-l", str(mount)], check=False)
    else:
        # SQLite's max_page_count is the cap; pruning delivered rows gives space back.
        record_property("disk_full_via", "max_page_count")
        yield SmallDisk(
            "max_page_count",
            tmp_path / "outbox.db",
            "max_bytes = 1048576\nretention_days = 0\nprune_interval_s = 1\n",
            lambda: None,
        )


async def wait_until(
    predicate: Callable[[], bool], what: str, task: asyncio.Task[None], timeout: float = 60
) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        if task.done():
            task.result()  # the daemon stopped: show why
            raise AssertionError(f"the agent stopped while waiting for {what}")
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_full_disk_refuses_reads_with_an_alarm_keeps_all_and_resumes(
    tmp_path: Path, small_disk: SmallDisk, ledger_down: LedgerProcess
) -> None:
    via = f"disk full via {small_disk.via}"
    # A steady scanner that never ends: 100 reads a second.
    script = write_script(
        tmp_path / "s.jsonl", [{"data": gtin14(i), "delay": 0.01} for i in range(50)]
    )
    ack = tmp_path / "ack.jsonl"
    cfg = write_config(
        tmp_path,
        ledger_down.url,
        ledger_down.token_file,
        script,
        speed=1,
        ack_log=ack,
        outbox_path=small_disk.outbox,
        extra_outbox=small_disk.extra_outbox,
    )
    cfg.write_text(cfg.read_text().replace("speed = 1\n", "speed = 1\nrepeat = true\n"))
    daemon = make_daemon(cfg, ledger_down.token)
    task = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.ready.wait(), 30)
        await wait_until(lambda: daemon.counters.reads["refused"] >= 20, f"refusals ({via})", task)
        assert "outbox_refusing" in daemon.alarms.active(), via
        assert not task.done(), f"the agent stopped on a full disk ({via})"
        good_when_full = daemon.counters.reads["good"]
        assert good_when_full > 0, via
        stats = await asyncio.to_thread(daemon.outbox.stats)  # type: ignore[union-attr]
        assert stats.pending >= good_when_full, via  # nothing acknowledged was dropped

        # Space comes back: the ballast goes, or (at the page cap) the ledger takes the
        # backlog and retention prunes it.
        small_disk.make_room()
        if small_disk.via == "max_page_count":
            await asyncio.to_thread(ledger_down.start)
        await wait_until(
            lambda: (
                daemon.counters.reads["good"] >= good_when_full + 100
                and "outbox_refusing" not in daemon.alarms.active()
            ),
            f"reads taken again ({via})",
            task,
        )
        assert not task.done(), via
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 30)  # a clean stop, no exception
    acks = [line for line in ack.read_text().splitlines() if line]
    assert any('"kind":"alarm"' in a and "refused" in a for a in acks), (
        via
    )  # heard, not only logged
    assert any('"kind":"bad"' in a and "not stored" in a for a in acks), via

    # Everything it acknowledged reaches the ledger once.
    if ledger_down.proc is None:
        await asyncio.to_thread(ledger_down.start)
    drain = write_config(
        tmp_path,
        ledger_down.url,
        ledger_down.token_file,
        None,
        outbox_path=small_disk.outbox,
        extra_outbox=small_disk.extra_outbox,
    )
    await run_until_settled(make_daemon(drain, ledger_down.token))
    journal = [e for e in ledger_down.journal() if e["source"] == "agent"]
    report = delivery_report(journal, acknowledged_reads(ack))
    # Reads stored while it stopped got no beep (their driver was closed): stored, not heard.
    assert 0 < report["acknowledged"] <= daemon.counters.reads["good"], via
    assert report["delivered"] == daemon.counters.reads["good"], via
    assert (report["lost"], report["duplicated"], report["seq_gaps"]) == (0, 0, 0), via
