"""Each station kind end to end: simulated scanners -> rules -> outbox -> a real ledger process.

The ledger's on-hand after a scripted session is the verdict.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from harness import AGENT, LedgerProcess, gtin14, make_daemon, run_until_settled, write_script

from agent.daemon import Daemon
from drivers.simulated import SimulatedScanner

G1, G2, G3 = gtin14(1), gtin14(2), gtin14(3)
SSCC = "376104250021234569"


def sgtin(n: int, serial: str) -> str:
    return f"01{gtin14(n)}21{serial}"


def config(
    workdir: Path,
    ledger: LedgerProcess,
    scripts: dict[str, list[dict[str, Any]]],
    stations: str,
    speed: float = 0,
    tag: str = "",
) -> Path:
    devices = ""
    for dev, lines in scripts.items():
        script = write_script(workdir / f"{dev}{tag}.jsonl", lines)
        devices += (
            f'[[devices]]\nid = "{dev}"\ndriver = "simulated"\nscript = "{script}"\n'
            f"speed = {speed}\n\n"
        )
    text = (
        f'[agent]\nid = "{AGENT}"\nstate_dir = "{workdir}"\n\n'
        f'[sync]\nurl = "{ledger.url}"\ntoken_file = "{ledger.token_file}"\n'
        "backoff_initial_s = 0.05\nbackoff_cap_s = 0.3\ntimeout_s = 5\n\n"
        f'[health]\nlisten = ""\n\n{devices}{stations}'
    )
    path = workdir / f"agent{tag}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def lines(*codes: str, delay: float = 0) -> list[dict[str, Any]]:
    return [{"data": c, "delay": delay} for c in codes]


def feedback(daemon: Daemon, device: str) -> list[tuple[str, str | None]]:
    driver = next(d for d in daemon.drivers if d.device_id == device)
    assert isinstance(driver, SimulatedScanner)
    return [(f.kind, f.reason) for f in driver.given]


ALL_KINDS = """
[[stations]]
name = "rcv"
kind = "receiving"
location = "DOCK-1"
devices = ["s-rcv"]

[[stations]]
name = "shp"
kind = "shipping"
location = "DOCK-9"
devices = ["s-shp"]

[[stations]]
name = "ret"
kind = "returns"
location = "RET"
quarantine_location = "QUAR"
devices = ["s-ret"]

[[stations]]
name = "put"
kind = "putaway"
staging = "STAGE"
devices = ["s-put"]

[[stations]]
name = "cc"
kind = "count"
devices = ["s-cc"]
"""


async def test_every_station_kind_into_the_ledger(tmp_path: Path, ledger: LedgerProcess) -> None:
    scripts = {
        "s-rcv": lines("PO:4500", G1, "QTY:10", G2, sgtin(3, "S1"), sgtin(3, "S1"), "END"),
        "s-shp": lines("ORDER:SO-1", G1, "QTY:3", G2, SSCC, SSCC),
        "s-ret": lines(G1, "DISP:damaged", G2, "DISP:quarantine", G3),
        "s-put": lines(G1, "LOC:A-01", G1, "QTY:4", G2),
        "s-cc": lines("LOC:B-01", G1, G1, G2, "END"),
    }
    daemon = make_daemon(config(tmp_path, ledger, scripts, ALL_KINDS), ledger.token)
    await run_until_settled(daemon)
    assert ledger.on_hand() == {
        f"DOCK-1/{G1}": 1,
        f"DOCK-1/{G2}": 10,
        f"DOCK-1/{G3}": 1,
        f"DOCK-9/{G1}": -1,
        f"DOCK-9/{G2}": -3,
        f"DOCK-9/{SSCC}": -1,
        f"RET/{G1}": 1,
        f"RET/{G2}": 0,  # returned damaged, then written off
        f"QUAR/{G3}": 1,
        f"STAGE/{G1}": -1,
        f"STAGE/{G2}": -4,
        f"A-01/{G1}": 1,
        f"A-01/{G2}": 4,
        f"B-01/{G1}": 2,
        f"B-01/{G2}": 1,
    }
    journal = [e for e in ledger.journal() if e["source"] == "agent"]
    assert {e["ref"].get("po") for e in journal if e["kind"] == "receive"} == {"4500"}
    assert {e["ref"].get("order") for e in journal if e["kind"] == "ship"} == {"SO-1"}
    rcv = feedback(daemon, "s-rcv")
    assert rcv[5][0] == "bad" and "duplicate serial" in (rcv[5][1] or "")
    assert feedback(daemon, "s-shp")[-1][0] == "bad"  # the SSCC shipped twice
    assert feedback(daemon, "s-put")[0][0] == "bad"  # an item before any location


COUNT = '[[stations]]\nname = "cc"\nkind = "count"\ndevices = ["s-cc"]\n'


async def test_count_session_across_a_restart(tmp_path: Path, ledger: LedgerProcess) -> None:
    first = config(tmp_path, ledger, {"s-cc": lines("LOC:C-1", G1, G1, "QTY:5", G2)}, COUNT)
    await run_until_settled(make_daemon(first, ledger.token))
    assert ledger.on_hand() == {}  # the session is open: nothing counted yet
    second = config(tmp_path, ledger, {"s-cc": lines(G1, "END")}, COUNT, tag="-2")
    await run_until_settled(make_daemon(second, ledger.token))
    assert ledger.on_hand() == {f"C-1/{G1}": 3, f"C-1/{G2}": 5}
    variances = [e for e in ledger.journal() if e["source"] == "ledger"]
    assert sorted((e["item"]["gtin"], e["qty"]) for e in variances) == [(G1, 3), (G2, 5)]


async def test_a_count_closes_its_location_an_item_nobody_counted_goes_to_zero(
    tmp_path: Path, ledger: LedgerProcess
) -> None:
    """Stock at A-01 (G1: 5, G2: 3, SSCC pallet: 1), a count that finds 4 of G1 and omits
    G2 and the pallet: their on-hand at A-01 becomes 0, with the variance in the journal."""
    stock = '[[stations]]\nname = "put"\nkind = "putaway"\nstaging = "STAGE"\ndevices = ["s-put"]\n'
    first = config(
        tmp_path,
        ledger,
        {"s-put": lines("LOC:A-01", G1, "QTY:4", G1, G2, "QTY:2", G2, SSCC, "LOC:A-02", G3)},
        stock,
    )
    await run_until_settled(make_daemon(first, ledger.token))
    assert {k: v for k, v in ledger.on_hand().items() if k.startswith("A-")} == {
        f"A-01/{G1}": 5,
        f"A-01/{G2}": 3,
        f"A-01/{SSCC}": 1,
        f"A-02/{G3}": 1,
    }
    second = config(
        tmp_path, ledger, {"s-cc": lines("LOC:A-01", G1, "QTY:3", G1, "END")}, COUNT, tag="-2"
    )
    await run_until_settled(make_daemon(second, ledger.token))
    on_hand = ledger.on_hand()
    assert (on_hand[f"A-01/{G1}"], on_hand[f"A-01/{G2}"], on_hand[f"A-01/{SSCC}"]) == (4, 0, 0)
    assert on_hand[f"A-02/{G3}"] == 1  # another location is not closed
    journal = ledger.journal()
    (close,) = [e for e in journal if e["kind"] == "count_close"]
    assert (close["to"], close["evidence"]["counted"]) == ("A-01", [G1])
    variances = {
        (
            e["item"].get("gtin") or e["item"].get("sscc"),
            e["qty"],
            e["from"],
            e["evidence"]["counted"],
        )
        for e in journal
        if e["source"] == "ledger"
    }
    assert variances == {(G1, 1, "A-01", 4), (G2, 3, "A-01", 0), (SSCC, 1, "A-01", 0)}


RCV = '[[stations]]\nname = "rcv"\nkind = "receiving"\nlocation = "DOCK-1"\ndevices = ["s-rcv"]\n'


async def test_cancel_before_delivery(tmp_path: Path, ledger_down: LedgerProcess) -> None:
    """The ledger is down: the syncer holds G1 in flight; G2 is never handed out, so
    CANCEL cancels it, and it never reaches the ledger."""
    script = [{"data": G1}, {"data": G2, "delay": 0.3}, {"data": "CANCEL", "delay": 0.1}]
    daemon = make_daemon(
        config(tmp_path, ledger_down, {"s-rcv": script}, RCV, speed=1), ledger_down.token
    )
    run = asyncio.create_task(run_until_settled(daemon))
    await asyncio.sleep(1.0)
    await asyncio.to_thread(ledger_down.start)
    await run
    assert ledger_down.on_hand() == {f"DOCK-1/{G1}": 1}
    assert feedback(daemon, "s-rcv")[-1] == ("good", "cancelled before delivery (1)")
    assert [e["kind"] for e in ledger_down.journal()] == ["receive"]


async def test_cancel_after_delivery_posts_the_reverse(
    tmp_path: Path, ledger: LedgerProcess
) -> None:
    script = [{"data": G1}, {"data": "QTY:4"}, {"data": G2}, {"data": "CANCEL", "delay": 1.0}]
    daemon = make_daemon(config(tmp_path, ledger, {"s-rcv": script}, RCV, speed=1), ledger.token)
    await run_until_settled(daemon)
    assert ledger.on_hand() == {f"DOCK-1/{G1}": 1, f"DOCK-1/{G2}": 0}
    assert feedback(daemon, "s-rcv")[-1] == ("good", "reversed: delivered already (1)")
    journal = ledger.journal()
    assert [(e["kind"], e["qty"]) for e in journal] == [("receive", 1), ("receive", 4), ("ship", 4)]
    assert journal[2]["ref"]["reverses"] == journal[1]["id"]


PUT = (
    '[[stations]]\nname = "put"\nkind = "putaway"\nstaging = "STAGE"\ndevices = []\n\n'
    '[[stations]]\nname = "rcv"\nkind = "receiving"\nlocation = "DOCK-1"\ndevices = []\n'
)


async def test_handheld_paired_unplugged_and_replugged(
    tmp_path: Path, ledger: LedgerProcess
) -> None:
    before = lines("PAIR:nowhere", "PAIR:put", "LOC:A-01", G1)
    first = config(tmp_path, ledger, {"hh-1": before}, PUT)
    daemon = make_daemon(first, ledger.token)
    await run_until_settled(daemon)
    assert "'nowhere'" in (feedback(daemon, "hh-1")[0][1] or "")
    # Unplugged; the agent restarts; the handheld comes back with the same stable id.
    second = config(tmp_path, ledger, {"hh-1": lines(G2, "OP:B-7", G3)}, PUT, tag="-2")
    await run_until_settled(make_daemon(second, ledger.token))
    assert ledger.on_hand() == {
        f"A-01/{G1}": 1,
        f"A-01/{G2}": 1,
        f"A-01/{G3}": 1,
        f"STAGE/{G1}": -1,
        f"STAGE/{G2}": -1,
        f"STAGE/{G3}": -1,
    }
    ops = [(e["item"]["gtin"], e["operator"], e["station"]) for e in ledger.journal()]
    assert ops[-1] == (G3, "B-7", "put")
