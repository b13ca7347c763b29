"""One agent per outbox: an exclusive lock held for as long as the outbox is open.

The outbox hands out sequence numbers from memory, so two processes writing
one file (a second `edgetally run` started by hand beside the service, a
tool that writes while the agent runs) would hand out the same numbers. The
lock is ``flock`` on ``<outbox>.lock``: the kernel drops it when the process
dies, kill -9 included, so a crash never leaves a stale lock behind. Readers
(`edgetally status`) take no lock: WAL lets them read beside the writer.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from agent.errors import OutboxError


class OutboxLock:
    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox
        self.path = Path(f"{outbox}.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise OutboxError(f"cannot create the lock file {self.path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise OutboxError(
                f"outbox {self.outbox} is open in another process (pid {holder}): one agent "
                "per outbox; stop that one first (systemctl stop edgetally)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd

    def release(self) -> None:
        """Closing the file drops the lock; the file stays (unlinking it would race)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
