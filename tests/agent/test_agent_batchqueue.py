"""agent/batchqueue.py: batches in and out in order, bounded by the count of items."""

from __future__ import annotations

import asyncio

import pytest

from agent.batchqueue import BatchQueue


def test_items_come_out_in_order_up_to_the_limit_across_batches() -> None:
    q: BatchQueue[int] = BatchQueue(100)
    q.put_nowait([1, 2, 3])
    q.put_nowait([4, 5])
    q.put_nowait([6, 7, 8, 9])
    assert q.qsize() == 9
    assert q.get_nowait(4) == [1, 2, 3, 4]  # one batch and a part of the next
    assert q.get_nowait(1) == [5]
    assert q.get_nowait(2) == [6, 7]  # a batch cut in two
    assert q.get_nowait() == [8, 9]
    assert q.get_nowait() == [] and q.empty()


def test_a_taken_batch_is_not_the_callers_list_when_extended() -> None:
    q: BatchQueue[int] = BatchQueue(100)
    first = [1]
    q.put_nowait(first)
    q.put_nowait([2])
    assert q.get_nowait() == [1, 2]
    assert first == [1]


def test_the_bound_counts_items_and_lets_one_batch_over_it() -> None:
    q: BatchQueue[int] = BatchQueue(3)
    q.put_nowait([1, 2])
    assert not q.full()
    q.put_nowait([3, 4, 5])  # let in: the queue held fewer than 3
    assert q.full() and q.qsize() == 5
    assert q.get_nowait(2) == [1, 2]
    assert q.full()  # 3 left of a bound of 3
    assert q.get_nowait(1) == [3]
    assert not q.full()


def test_put_waits_for_room_and_get_waits_for_items() -> None:
    async def main() -> list[str]:
        q: BatchQueue[int] = BatchQueue(2)
        said: list[str] = []

        async def producer() -> None:
            for batch in ([1, 2], [3], [4, 5]):
                was_full = q.full()
                assert await q.put(batch)
                said.append(f"put {batch} {'after waiting' if was_full else 'at once'}")
            q.close()

        async def consumer() -> None:
            while got := await q.get(1):
                said.append(f"got {got}")

        await asyncio.gather(producer(), consumer())
        return said

    said = asyncio.run(main())
    assert [s for s in said if s.startswith("got")] == [f"got [{i}]" for i in range(1, 6)]
    assert "put [3] after waiting" in said  # [1, 2] filled the bound of 2


def test_close_drains_what_is_left_then_gives_empty_lists_and_refuses_puts() -> None:
    async def main() -> None:
        q: BatchQueue[str] = BatchQueue(10)
        q.put_nowait(["a", "b"])
        q.close()
        assert await q.get() == ["a", "b"]
        assert await q.get() == []
        assert not q.put_nowait(["c"]) and not await q.put(["d"])
        assert q.empty()

    asyncio.run(main())


def test_a_put_waiting_for_room_when_the_queue_closes_is_refused() -> None:
    async def main() -> bool:
        q: BatchQueue[int] = BatchQueue(1)
        q.put_nowait([1])
        waiting = asyncio.create_task(q.put([2]))
        await asyncio.sleep(0)
        assert not waiting.done()
        q.close()
        return await waiting

    assert asyncio.run(main()) is False


def test_a_bound_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="maxsize must be at least 1, not 0"):
        BatchQueue(0)
