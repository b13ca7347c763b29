"""When the daemon's RFID tick may decide what time decides (a pass gone quiet, a
departure), and when it must tell the stations that the agent was stalled.

Pure, so it is tested with plain numbers. A tick that woke late means the loop
was stalled: reports may sit unread in a socket (or, in the tests, in an
emulator that shares the loop and sends them late), so that tick decides
nothing and the stations count no silence from before it (``Rules.unwatched``).
A tick that finds reads queued waits for them too. Either waits a few ticks at
most: a reader that floods must not starve the decisions.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TickGate:
    period_s: float  # how often the daemon ticks
    waits_max: int  # ticks in a row that may wait
    waited: int = 0

    def woke(self, late_s: float, queued: bool) -> tuple[bool, bool]:
        """(decide now, the agent was stalled) for a tick that woke ``late_s`` after it was
        due, with reads still ``queued`` for the rules or not."""
        stalled = late_s > self.period_s
        if (stalled or queued) and self.waited < self.waits_max:
            self.waited += 1
            return False, stalled
        self.waited = 0
        return True, stalled
