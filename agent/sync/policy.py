"""How long to wait before the next attempt, given what went wrong.

Full-jitter exponential backoff (tenacity's ``wait_random_exponential``),
capped; a ledger's Retry-After raises the wait to at least what it asked, still
under the cap; a configuration alarm (401/403/404) waits the slow
``auth_retry_s``. The attempt count continues from the one stored in the
outbox, so a restart during a long outage does not start hammering again.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenacity import RetryCallState, wait_random_exponential

from agent.errors import LedgerMisconfigured, SyncTransient


@dataclass(frozen=True, slots=True)
class _Attempt:
    """tenacity's waits read only ``attempt_number``; this carries the stored count."""

    attempt_number: int


class RetryPolicy:
    def __init__(self, initial_s: float, cap_s: float, auth_retry_s: float) -> None:
        self.cap_s = cap_s
        self.auth_retry_s = auth_retry_s
        self._jitter = wait_random_exponential(multiplier=initial_s, max=cap_s)

    def wait(self, attempt: int, error: BaseException | None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based, persisted)."""
        if isinstance(error, LedgerMisconfigured):
            return self.auth_retry_s
        backoff = float(self._jitter(_Attempt(attempt)))  # type: ignore[arg-type]
        retry_after = error.retry_after if isinstance(error, SyncTransient) else None
        if retry_after is not None:
            backoff = max(backoff, retry_after)
        return min(backoff, self.cap_s)

    def tenacity_wait(self, base_attempts: int) -> WaitFromStore:
        return WaitFromStore(self, base_attempts)


class WaitFromStore:
    """A tenacity ``wait`` that counts attempts from the outbox's stored count."""

    def __init__(self, policy: RetryPolicy, base_attempts: int) -> None:
        self.policy = policy
        self.base_attempts = base_attempts

    def __call__(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        return self.policy.wait(self.base_attempts + state.attempt_number, error)
