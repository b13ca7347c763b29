"""Work that must run to its end even when its caller is cancelled.

A stop that is cut short is worse than a slow one: the daemon's ordered stop
(drivers, rules, outbox writer, sinks) and the outbox's open and close are each
run to the end here, and a cancel that came meanwhile is raised once they are
done, so whoever cancelled still sees ``CancelledError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def finished(work: Awaitable[T]) -> tuple[T, bool]:
    """``work``'s result once it has ended, and whether the caller was cancelled
    meanwhile (the caller puts things right, then raises ``CancelledError``).

    ``work`` runs as a task this call owns and waits for, however many cancels come.
    Its own errors, a cancel of its own included, are raised as they are.
    """
    task = asyncio.ensure_future(work)
    cancelled = False
    while True:
        try:
            return await asyncio.shield(task), cancelled
        except asyncio.CancelledError:
            if task.done():
                raise  # the work itself was cancelled
            cancelled = True


async def to_the_end(work: Awaitable[T]) -> T:
    """``work`` run to its end; then a cancel that came meanwhile is raised."""
    result, cancelled = await finished(work)
    if cancelled:
        raise asyncio.CancelledError
    return result
