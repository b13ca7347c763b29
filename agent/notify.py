"""The systemd notify protocol, written here by hand.

The protocol is small enough that a library would be more code to trust than
it saves: the service manager passes ``$NOTIFY_SOCKET``, an ``AF_UNIX``
datagram socket (a filesystem path, or ``@name`` for the abstract namespace),
and the service sends it newline-separated ``KEY=VALUE`` lines such as
``READY=1``, ``STATUS=…``, ``WATCHDOG=1`` and ``STOPPING=1``. With
``WatchdogSec=`` set, systemd also passes ``$WATCHDOG_USEC`` (and
``$WATCHDOG_PID``, the process it expects pings from) and restarts the service
when no ``WATCHDOG=1`` arrives in time. See sd_notify(3) and systemd.service(5).

Rules kept here:

- Nothing is global: a :class:`Notifier` is built from an environment mapping
  (``os.environ`` by default) and owns its socket; ``close()`` it, or use it as
  a context manager.
- Without ``$NOTIFY_SOCKET`` (run by hand, in tests) it is disabled and every
  call is a silent no-op; with one it cannot use (a relative path, a
  ``vsock:`` address, no socket to be had) likewise, after one warning.
- The watchdog is honoured only when ``$WATCHDOG_USEC`` is a positive integer
  and ``$WATCHDOG_PID`` is unset or is this process.
- Sending never blocks and never raises into the daemon: a socket that is gone
  or full is logged once (until a send succeeds again) and the call returns
  ``False``.
- Status text is one line of valid UTF-8 without NUL: control characters become
  spaces and it is cut to :data:`STATUS_MAX_BYTES`, so barcode data cannot
  break the protocol.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Mapping
from types import TracebackType

from agent.logs import event

log = logging.getLogger("edgetally.notify")

STATUS_MAX_BYTES = 1024
"""Longest STATUS= value sent, in UTF-8 bytes (systemd reads at most 4 KiB per message)."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _clean_status(text: str) -> str:
    one_line = _CONTROL.sub(" ", text)
    data = one_line.encode("utf-8", errors="replace")[:STATUS_MAX_BYTES]
    # a cut in the middle of a character is dropped, never sent as invalid UTF-8
    return data.decode("utf-8", errors="ignore")


def _socket_address(value: str) -> bytes | None:
    """The ``sendto`` address for a ``$NOTIFY_SOCKET`` value, or None if unsupported."""
    if value.startswith("@") and len(value) > 1:
        return b"\0" + os.fsencode(value[1:])
    if value.startswith("/"):
        return os.fsencode(value)
    return None  # relative paths and vsock: addresses (systemd 254+, VMs) are not supported


def _watchdog_usec(env: Mapping[str, str], pid: int) -> int | None:
    raw_usec = env.get("WATCHDOG_USEC", "")
    raw_pid = env.get("WATCHDOG_PID", "")
    if not raw_usec:
        return None
    try:
        usec = int(raw_usec)
        if raw_pid and int(raw_pid) != pid:
            return None  # the watchdog is meant for another process (our parent, say)
    except ValueError:
        event(
            log,
            "notify_watchdog_env_invalid",
            level=logging.WARNING,
            watchdog_usec=raw_usec,
            watchdog_pid=raw_pid,
        )
        return None
    return usec if usec > 0 else None


class Notifier:
    """Talks to systemd through ``$NOTIFY_SOCKET``; disabled when there is none."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._address: bytes | None = None
        self._where = ""
        self._sock: socket.socket | None = None
        self._watchdog_usec: int | None = None
        self._failing = False
        raw = env.get("NOTIFY_SOCKET", "")
        if raw:
            self._where = raw
            self._address = _socket_address(raw)
            if self._address is None:
                event(log, "notify_socket_unsupported", level=logging.WARNING, notify_socket=raw)
        if self._address is None:
            return
        self._watchdog_usec = _watchdog_usec(env, os.getpid())
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        except OSError as exc:  # AF_UNIX forbidden by a sandbox, out of descriptors
            event(
                log,
                "notify_socket_failed",
                level=logging.WARNING,
                notify_socket=raw,
                error=f"{type(exc).__name__}: {exc}",
            )
            return
        sock.setblocking(False)
        self._sock = sock

    @property
    def enabled(self) -> bool:
        """True while there is a notify socket to send to (and ``close()`` was not called)."""
        return self._sock is not None

    def watchdog_interval_s(self) -> float | None:
        """How often to send ``WATCHDOG=1``: half of ``$WATCHDOG_USEC``; None without a watchdog."""
        if self._watchdog_usec is None or self._sock is None:
            return None
        return self._watchdog_usec / 2 / 1_000_000

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: start-up is complete (outbox open, drivers started)."""
        return self._send("READY=1", status)

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: the main loop is alive. Sends nothing when no watchdog is honoured."""
        if self.watchdog_interval_s() is None:
            return False
        return self._send("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        """``STOPPING=1``: shutdown has begun."""
        return self._send("STOPPING=1", status)

    def status(self, text: str) -> bool:
        """``STATUS=…``: one line shown by ``systemctl status``."""
        return self._send(None, text)

    def close(self) -> None:
        """Close the socket; later calls send nothing and return False. Idempotent."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def __enter__(self) -> Notifier:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, line: str | None, status: str | None = None) -> bool:
        if self._sock is None or self._address is None:
            return False
        lines = [] if line is None else [line]
        if status is not None:
            lines.append("STATUS=" + _clean_status(status))
        message = "\n".join(lines).encode("utf-8")
        try:
            self._sock.sendto(message, self._address)
        except OSError as exc:
            # ENOENT/ECONNREFUSED: the socket is gone; EAGAIN: systemd is not reading.
            if not self._failing:
                self._failing = True
                event(
                    log,
                    "notify_send_failed",
                    level=logging.WARNING,
                    notify_socket=self._where,
                    error=f"{type(exc).__name__}: {exc}",
                )
            return False
        if self._failing:
            self._failing = False
            event(log, "notify_send_recovered", notify_socket=self._where)
        return True
