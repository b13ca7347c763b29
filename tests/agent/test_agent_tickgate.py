"""The daemon's RFID tick waits for an agent that is behind, and says when it stalled."""

from __future__ import annotations

from agent.tickgate import TickGate


def test_an_on_time_tick_with_nothing_queued_decides() -> None:
    gate = TickGate(0.1, 10)
    assert gate.woke(0.01, queued=False) == (True, False)


def test_a_late_tick_is_a_stall_and_waits_for_the_reports_it_held_up() -> None:
    # Before, the daemon waited too, but never said so: the next tick, on time,
    # counted the stall as the readers' silence and cut every open pass.
    gate = TickGate(0.1, 10)
    assert gate.woke(0.9, queued=False) == (False, True)
    assert gate.woke(0.0, queued=False) == (True, False)


def test_queued_reads_wait_but_are_no_stall() -> None:
    gate = TickGate(0.1, 10)
    assert gate.woke(0.0, queued=True) == (False, False)


def test_an_agent_always_behind_still_decides_every_few_ticks() -> None:
    # A reader that floods keeps reads queued: the decisions must not starve.
    gate = TickGate(0.1, 3)
    seen = [gate.woke(0.5, queued=True) for _ in range(8)]
    assert [go for go, _ in seen] == [False, False, False, True, False, False, False, True]
    assert all(stalled for _, stalled in seen)  # each late tick still moves the silence on
