"""Ledger restarts mid-drain, and readers of the outbox while the agent writes.

The ledger process is killed (SIGKILL: a request may be applied and never
answered) and later stopped (SIGTERM) while the agent drains a backlog over
real TCP; every movement must reach it once, in seq order. Then the agent's
outbox is read by `edgetally status` processes and by a reader that holds a
WAL snapshot open for the whole burst: the writer must never wait for them.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from pathlib import Path

from bench.common import acknowledged_reads, delivery_report
from tests.e2e.harness import (
    ROOT,
    LedgerProcess,
    agent_env,
    gtin14,
    make_daemon,
    write_config,
    write_script,
)


def kill_and_restart(ledger: LedgerProcess) -> None:
    assert ledger.proc is not None
    ledger.proc.kill()
    ledger.proc.wait(10)
    ledger.proc = None
    ledger.start()


def stop_and_restart(ledger: LedgerProcess) -> None:
    ledger.stop()
    ledger.start()


async def test_ledger_killed_and_restarted_mid_drain_gets_everything_once(
    tmp_path: Path, ledger: LedgerProcess
) -> None:
    n = 3000
    script = write_script(tmp_path / "s.jsonl", [{"data": gtin14(i % 40)} for i in range(n)])
    ack = tmp_path / "ack.jsonl"
    cfg = write_config(
        tmp_path,
        ledger.url,
        ledger.token_file,
        script,
        ack_log=ack,
        extra_sync="batch_max = 25\n",
        backoff_cap_s=0.2,
    )
    daemon = make_daemon(cfg, ledger.token)
    task = asyncio.create_task(daemon.run())
    restarts = []
    try:
        await asyncio.wait_for(daemon.ready.wait(), 30)
        assert daemon.syncer is not None
        for mark, restart in ((400, kill_and_restart), (1500, stop_and_restart)):
            while daemon.syncer.status.delivered < mark:
                assert not task.done()
                await asyncio.sleep(0.01)
            restarts.append(daemon.syncer.status.delivered)
            await asyncio.to_thread(restart, ledger)
        await asyncio.wait_for(daemon.wait_settled(), 120)
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 10)
    assert all(r < n for r in restarts), "both restarts happened mid-drain"
    journal = [e for e in ledger.journal() if e["source"] == "agent"]
    report = delivery_report(journal, acknowledged_reads(ack))
    assert report["acknowledged"] == report["delivered"] == n
    assert (report["lost"], report["duplicated"], report["seq_gaps"]) == (0, 0, 0)
    assert [e["seq"] for e in journal] == list(range(1, n + 1))  # in order, across restarts
    assert daemon.syncer.status.retries >= 1  # the outages were seen
    assert sum(ledger.on_hand().values()) == n


async def edgetally_status(config: Path) -> dict[str, object]:
    proc = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "agent.cli", "status", "--config", str(config), "--json"],
        cwd=ROOT,
        env=agent_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    report: dict[str, object] = json.loads(out)
    return report


async def test_status_and_a_long_reader_never_block_the_writer(
    tmp_path: Path, ledger: LedgerProcess
) -> None:
    n = 6000
    script = write_script(tmp_path / "s.jsonl", [{"data": gtin14(i % 40)} for i in range(n)])
    cfg = write_config(tmp_path, ledger.url, ledger.token_file, script)
    daemon = make_daemon(cfg, ledger.token)
    task = asyncio.create_task(daemon.run())
    seen: list[int] = []
    try:
        await asyncio.wait_for(daemon.ready.wait(), 30)
        outbox = daemon.config.outbox_path
        # A reader that keeps one WAL snapshot open through the whole burst.
        reader = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True, isolation_level=None)
        reader.execute("BEGIN")
        snapshot = reader.execute("SELECT count(*) FROM reads").fetchone()[0]
        while sum(daemon.counters.reads.values()) < n:
            assert not task.done()
            report = await edgetally_status(cfg)
            outbox_part = report["outbox"]
            assert isinstance(outbox_part, dict)
            seen.append(int(outbox_part["next_seq"]))
        # Every read was stored while the snapshot was held open...
        assert daemon.counters.reads["good"] == n
        # ...and the reader still sees the database as it was when it began.
        assert reader.execute("SELECT count(*) FROM reads").fetchone()[0] == snapshot
        reader.execute("COMMIT")
        assert reader.execute("SELECT count(*) FROM reads").fetchone()[0] == n
        reader.close()
        await asyncio.wait_for(daemon.wait_settled(), 120)
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 10)
    assert seen, "status ran while the agent was writing"
    assert seen == sorted(seen)  # each status saw a consistent, growing outbox
    journal = [e for e in ledger.journal() if e["source"] == "agent"]
    assert delivery_report(journal, [])["delivered"] == n
