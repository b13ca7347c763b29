"""End to end: the LLRP reader emulator over TCP, the real LLRP driver, the daemon with a
portal station, and the reference ledger as a process. Scenario time runs ``SPEED``
times faster than the wall clock, so a pallet pass takes about a second."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from harness import LedgerProcess, LlrpAgent, journal_holds, llrp_device

from agent.config import load_config
from agent.daemon import Daemon
from agent.replay import ReplayedTick, replay
from drivers.llrp_emulator import bundled_scenario, load_scenario

SPEED = 5.0


def _door(port: int, extra: str = "", device: str = "") -> str:
    return llrp_device("dock-7-portal", port, [1, 2, 3, 4], device) + (
        '\n[[stations]]\nname = "dock-7-door"\nkind = "portal"\nlocation = "DOCK-7"\n'
        'devices = ["dock-7-portal"]\noutside_antennas = [1, 2]\ninside_antennas = [3, 4]\n'
        f"quiet_ms = 600\nmax_track_ms = 2000\n{extra}"
    )


async def _run(
    llrp_agent: LlrpAgent,
    ledger: LedgerProcess,
    scenario: str,
    want: int,
    beam: bool | None = None,
    verdicts: Counter[str] | None = None,
    until_verdicts: int = 0,
    verdict: str | None = None,
    record: bool = False,
) -> list[dict[str, object]]:
    """Run the daemon against the emulator until the ledger holds ``want`` movements
    (or, when ``want`` is 0, until the portal has judged ``until_verdicts`` passes, or
    that many with the verdict ``verdict``), and return the ledger's journal.

    ``beam``: the portal is gated by a beam sensor on GPI 1, which the emulator
    breaks as the pallet goes through the door (True) or never (False).
    ``verdicts`` gets the portal's verdicts as counted in the metrics. ``record``: the daemon records its reads (and GPI) to
    ``reads.jsonl`` beside its config, for ``_replayed``."""
    sc = dataclasses.replace(load_scenario(bundled_scenario(scenario)), speed=SPEED)
    extra = device = ""
    if beam is not None:
        sc = dataclasses.replace(sc, beam_gpi=1 if beam else None)
        extra, device = "beam_gpi = 1\n", "gpi_port = 1\n"
    if record:
        extra += '\n[record]\npath = "reads.jsonl"\n'
    async with llrp_agent.run(sc, lambda port: _door(port, extra, device), ledger) as run:
        daemon = run.daemon
        if want:
            await run.until(journal_holds(ledger, want))  # passing runs take ~4 s
        else:

            async def judged() -> bool:
                seen = _verdicts(daemon)
                return (seen[verdict] if verdict else sum(seen.values())) >= until_verdicts

            await run.until(judged)
        await asyncio.sleep(1.0)  # anything more would be a double
    if verdicts is not None:
        verdicts.update(_verdicts(daemon))
    return await asyncio.to_thread(ledger.journal)


def _replayed(tmp_path: Path) -> tuple[set[str], Counter[str]]:
    """``edgetally replay`` of what the daemon recorded, with the config it ran: the EPCs
    it would move, and the verdicts of the passes it closed."""
    results = replay(
        load_config(tmp_path / "agent.toml"),
        (tmp_path / "reads.jsonl").read_text(encoding="utf-8").splitlines(),
        "reads.jsonl",
    )
    moved: set[str] = set()
    verdicts: Counter[str] = Counter()
    for r in results:
        if isinstance(r, ReplayedTick):
            moved |= {m.item.epc or "" for m in r.tick.decision.movements}
            verdicts[r.tick.decision.verdict or ""] += 1
    return moved, verdicts


def _verdicts(daemon: Daemon) -> Counter[str]:
    """The portal's verdicts so far, as the metrics count them."""
    out: Counter[str] = Counter()
    for metric in daemon.metrics.portal_passes.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                out[sample.labels["verdict"]] += int(sample.value)
    return out


def _epcs(journal: list[dict[str, object]], kind: str) -> set[str]:
    out = set()
    for entry in journal:
        m = entry.get("movement", entry)
        assert isinstance(m, dict)
        if m["kind"] == kind:
            out.add(m["item"]["epc"])
    return out


def _kinds(journal: list[dict[str, object]]) -> Counter[str]:
    return Counter(str(e.get("movement", e)["kind"]) for e in journal)  # type: ignore[index]


@pytest.mark.parametrize(
    ("scenario", "kind", "first"),
    [("portal-inbound", "receive", 1000), ("portal-outbound", "ship", 2000)],
)
async def test_a_pallet_through_the_portal_reaches_the_ledger_once_per_tag(
    llrp_agent: LlrpAgent, ledger: LedgerProcess, scenario: str, kind: str, first: int
) -> None:
    journal = await _run(llrp_agent, ledger, scenario, want=200)
    assert _kinds(journal) == {kind: 200}
    assert _epcs(journal, kind) == {
        f"urn:epc:id:sgtin:0614141.012345.{first + i}" for i in range(200)
    }
    stock = ledger.on_hand()
    assert stock == {"DOCK-7/00614141123452": 200 if kind == "receive" else -200}


async def test_two_pallets_crossing_opposite_ways_both_reach_the_ledger(
    llrp_agent: LlrpAgent, ledger: LedgerProcess
) -> None:
    journal = await _run(llrp_agent, ledger, "portal-two-pallets", want=200)
    assert _epcs(journal, "receive") == {
        f"urn:epc:id:sgtin:0614141.012345.{8000 + i}" for i in range(100)
    }
    assert _epcs(journal, "ship") == {
        f"urn:epc:id:sgtin:0614141.012345.{9000 + i}" for i in range(100)
    }
    assert ledger.on_hand() == {"DOCK-7/00614141123452": 0}


async def test_a_cross_read_pallet_moves_nothing(
    tmp_path: Path, llrp_agent: LlrpAgent, ledger: LedgerProcess
) -> None:
    # A pallet parked by the door: its tracks close at max_track_ms (2 s) again and
    # again, each judged (100 of them), none a crossing.
    verdicts: Counter[str] = Counter()
    journal = await _run(
        llrp_agent,
        ledger,
        "portal-crossread",
        want=0,
        verdicts=verdicts,
        until_verdicts=100,
    )
    assert journal == [], (verdicts, journal[:3])
    # every judged pass is counted by why it moved nothing, none as a crossing
    assert sum(verdicts.values()) >= 100, verdicts
    assert not {"crossed_in", "crossed_out"} & set(verdicts), verdicts
    db = tmp_path / "outbox.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        (reads,) = conn.execute("SELECT count(*) FROM reads").fetchone()
        outcomes = {o for (o,) in conn.execute("SELECT DISTINCT outcome FROM reads")}
    assert reads > 1000  # the reads were there, and every one is kept
    assert outcomes == {"tracked"}


async def test_a_beam_gated_portal_moves_a_pallet_only_through_a_broken_beam(
    tmp_path: Path, llrp_agent: LlrpAgent, ledger: LedgerProcess
) -> None:
    verdicts: Counter[str] = Counter()
    journal = await _run(
        llrp_agent,
        ledger,
        "portal-inbound",
        want=200,
        beam=True,
        verdicts=verdicts,
        record=True,
    )
    assert _kinds(journal) == {"receive": 200}
    assert verdicts["crossed_in"] == 200 and verdicts["beam_not_broken"] == 0, verdicts
    # replay of the recording (reads and GPI) moves what the live run moved
    moved, replayed = _replayed(tmp_path)
    assert moved == _epcs(journal, "receive")
    assert replayed["beam_not_broken"] == 0, replayed


async def test_a_beam_gated_portal_moves_nothing_when_the_beam_stays_whole(
    tmp_path: Path, llrp_agent: LlrpAgent, ledger: LedgerProcess
) -> None:
    # The same pallet by RF, but nothing broke the beam: every pass is refused by it.
    verdicts: Counter[str] = Counter()
    journal = await _run(
        llrp_agent,
        ledger,
        "portal-inbound",
        want=0,
        beam=False,
        verdicts=verdicts,
        until_verdicts=200,
        verdict="beam_not_broken",
        record=True,
    )
    assert journal == []
    assert verdicts["beam_not_broken"] == 200, verdicts
    # replay gates the passes as the live run did: the recording has the beam's GPI
    moved, replayed = _replayed(tmp_path)
    assert moved == set(), replayed
    assert replayed["beam_not_broken"] >= 200, replayed
