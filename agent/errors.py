"""EdgeTally's exceptions, one tree.

    EdgeTallyError
    ├── ConfigError            a config file, key or value is wrong (names all three)
    ├── DriverError            a device misbehaved
    │   ├── DeviceNotFound
    │   └── DeviceGone
    ├── OutboxError            the local store cannot do what was asked
    │   ├── OutboxFull         at the size cap or out of disk: reads are refused
    │   └── OutboxDamaged      the file fails its integrity check at start-up
    └── SyncError              talking to the ledger went wrong
        ├── SyncTransient      worth retrying (network, timeouts, 408/409/425/429/5xx)
        ├── LedgerMisconfigured  404, 415, a proxy's 400…: a configuration alarm, retried slowly
        │   └── LedgerAuth         401/403
        ├── LedgerRejected     a whole batch was refused (400/422 with the ledger's reason): bisect
        └── PayloadTooLarge    413: halve the batch

Third-party errors are translated into these at the boundary where they occur
(sqlite3 in the outbox, httpx in the sink), re-raised ``from`` the original.
"""

from __future__ import annotations


class EdgeTallyError(Exception):
    """Base of every error EdgeTally raises on purpose."""


class ConfigError(EdgeTallyError):
    """A bad config: the message names the file, the key path and what was expected."""

    def __init__(self, file: str, key: str, expected: str) -> None:
        self.file = file
        self.key = key
        self.expected = expected
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {expected}")


class DriverError(EdgeTallyError):
    pass


class DeviceNotFound(DriverError):
    pass


class DeviceGone(DriverError):
    pass


class OutboxError(EdgeTallyError):
    pass


class OutboxFull(OutboxError):
    pass


class OutboxDamaged(OutboxError):
    pass


class SyncError(EdgeTallyError):
    pass


class SyncTransient(SyncError):
    """A failure worth retrying; ``retry_after`` is the ledger's hint in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LedgerMisconfigured(SyncError):
    """The ledger refuses us for a reason only a person can fix (token, URL)."""


class LedgerAuth(LedgerMisconfigured):
    pass


class LedgerRejected(SyncError):
    pass


class PayloadTooLarge(SyncError):
    pass
