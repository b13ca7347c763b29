"""agent/tasks: work that runs to its end through its caller's cancels."""

from __future__ import annotations

import asyncio

import pytest

from agent.tasks import finished, to_the_end


class Steps:
    """Work of ``n`` loop passes that records how far it got."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.done = 0

    async def run(self) -> str:
        for _ in range(self.n):
            await asyncio.sleep(0)
            self.done += 1
        return "ended"


async def test_a_cancelled_caller_waits_for_the_work_then_sees_its_cancel() -> None:
    work = Steps(20)
    caller = asyncio.create_task(to_the_end(work.run()))
    for pause in (2, 3, 4):  # cancelled three times while the work goes on
        for _ in range(pause):
            await asyncio.sleep(0)
        caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert work.done == 20


async def test_finished_says_whether_a_cancel_came() -> None:
    assert await finished(Steps(3).run()) == ("ended", False)
    work = Steps(5)
    caller = asyncio.create_task(finished(work.run()))
    await asyncio.sleep(0)
    caller.cancel()
    assert await caller == ("ended", True)
    assert work.done == 5


async def test_the_works_own_error_and_cancel_are_raised_as_they_are() -> None:
    async def fails() -> None:
        await asyncio.sleep(0)
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        await to_the_end(fails())

    inner = asyncio.ensure_future(Steps(10).run())
    caller = asyncio.create_task(to_the_end(inner))
    await asyncio.sleep(0)
    inner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert inner.cancelled()
