"""Alarms: conditions a person must see (outbox full, sync stalled, ledger refusing us).

Raised and cleared by key; each change is logged and handed to ``on_change``
(the daemon sends it to the operators' feedback devices), so an integration
failure never stops the data flow silently.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from agent.logs import event

log = logging.getLogger("edgetally.alarms")


@dataclass(frozen=True, slots=True)
class Alarm:
    key: str
    message: str
    since: float


class Alarms:
    def __init__(
        self,
        on_change: Callable[[Alarm, bool], None] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._active: dict[str, Alarm] = {}
        self._on_change = on_change
        self._wall = wall

    def raise_(self, key: str, message: str) -> None:
        current = self._active.get(key)
        if current is not None and current.message == message:
            return
        alarm = Alarm(key, message, current.since if current else self._wall())
        self._active[key] = alarm
        event(log, "alarm_raised", level=logging.ERROR, alarm=key, message=message)
        if self._on_change is not None:
            self._on_change(alarm, True)

    def clear(self, key: str) -> None:
        alarm = self._active.pop(key, None)
        if alarm is None:
            return
        event(log, "alarm_cleared", alarm=key)
        if self._on_change is not None:
            self._on_change(alarm, False)

    def active(self) -> dict[str, Alarm]:
        return dict(self._active)
