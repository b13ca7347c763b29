"""The serial driver through the daemon: bytes on a pty to a `receive` at the ledger.

A real daemon, a real reference ledger process, a real SQLite outbox; the
scanner is the master side of a pty. Good and bad scans get their Honeywell
good/bad-read bytes back on the wire, in order.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tty
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from driver_kit import eventually, outbox_rows
from harness import AGENT, LedgerProcess, make_daemon


def write_config(workdir: Path, ledger: LedgerProcess, port: str) -> Path:
    path = workdir / "serial.toml"
    path.write_text(
        f'[agent]\nid = "{AGENT}"\nstate_dir = "{workdir}"\n\n'
        f'[outbox]\npath = "outbox.db"\n\n'
        f'[sync]\nurl = "{ledger.url}"\ntoken_file = "{ledger.token_file}"\n'
        "backoff_initial_s = 0.05\nbackoff_cap_s = 0.5\n\n"
        '[health]\nlisten = "127.0.0.1:0"\n\n'
        '[[devices]]\nid = "dock-scanner"\ndriver = "serial"\n'
        f'port = "{port}"\nterminator = "cr"\nfeedback = "honeywell"\n\n'
        '[[stations]]\nname = "dock-7"\nkind = "receiving"\nlocation = "DOCK-7"\n'
        'devices = ["dock-scanner"]\n',
        encoding="utf-8",
    )
    return path


async def test_device_bytes_become_a_receive_movement(
    tmp_path: Path, ledger: LedgerProcess
) -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    db = tmp_path / "outbox.db"
    daemon = make_daemon(write_config(tmp_path, ledger, os.ttyname(slave)), ledger.token)
    task = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.ready.wait(), 30)
        (driver,) = daemon.drivers
        assert driver.present, driver.problem
        os.write(master, b"\x00\xff\x1b\r")  # line noise
        os.write(master, b"09506000134352\r")  # a GTIN: one unit received
        os.write(master, b"]C1\r")  # an AIM id and nothing else
        await eventually(lambda: len(ledger.journal()) == 1, "the movement at the ledger")
        await eventually(
            lambda: len(outbox_rows(db, "SELECT id FROM reads")) == 3, "three reads stored"
        )
        feedback = b""
        while len(feedback) < 6:
            try:
                feedback += os.read(master, 6 - len(feedback))
            except BlockingIOError:
                await asyncio.sleep(0.01)
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 30)
        os.close(master)
        os.close(slave)

    reads = outbox_rows(db, "SELECT data, outcome FROM reads ORDER BY mono_ns")
    assert [r[0] for r in reads] == [b"\x00\xff\x1b", b"09506000134352", b""]
    assert reads[1][1] == "good"
    # the driver's reason reaches the stored outcome ("bad: <rules' words>: <reason>")
    assert str(reads[0][1]).startswith("bad: ")
    assert "garbage on the line: byte 0xff at offset 1" in str(reads[0][1])
    assert str(reads[2][1]).startswith("bad: ") and str(reads[2][1]).endswith("empty scan")
    # good and bad reads were signalled in the order they were read
    assert feedback == b"\x1b8\x1b7\x1b8"

    (payload,) = [json.loads(str(r[0])) for r in outbox_rows(db, "SELECT payload FROM movements")]
    assert payload["kind"] == "receive"
    assert payload["item"]["gtin"] == "09506000134352"
    assert (payload["to"], payload["qty"], payload["device"]) == ("DOCK-7", 1, "dock-scanner")
    (entry,) = ledger.journal()
    assert entry["id"] == payload["id"]
