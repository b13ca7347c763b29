"""A free loopback TCP port for a server we start (the demo's, the tests', the benches').

Not port 0's pick: the kernel takes that from its ephemeral range, the range it also
gives every outgoing connection its local port from. A server that is stopped and
started again on its port (an outage played by a test, a bench or the demo) can then
find the port taken: by any process's outgoing connection, or by the very client that
is retrying to reach it, which on loopback can connect to itself (TCP simultaneous
open) and then reads its own packets (seen: an MQTT client logging "Unrecognised
command 16", its own CONNECT, while mosquitto could not bind the port again). A port
below the ephemeral range is never handed out that way.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST = 10_000  # below: well-known and registered services' usual ports
TRIES = 200
# Ports this process handed out: drawn at random, two calls before either server binds
# could draw the same one, where the kernel's pick walks on. Process-wide on purpose:
# the ports are.
_GIVEN: set[int] = set()


def ephemeral_range(path: Path = RANGE_FILE) -> tuple[int, int]:
    """The kernel's ephemeral port range (Linux's default where it cannot be read)."""
    try:
        low, high = (int(x) for x in path.read_text().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on, below the ephemeral range when there is room there."""
    low, _ = ephemeral_range()
    if low - LOWEST >= TRIES:
        pick = random.SystemRandom()  # separate processes must not draw the same ports
        for _ in range(TRIES):
            port = pick.randrange(LOWEST, low)
            if port in _GIVEN:
                continue
            with socket.socket() as s:
                try:
                    s.bind((host, port))
                except OSError:
                    continue
            _GIVEN.add(port)
            return port
    with socket.socket() as s:  # no room below it (a tuned kernel): the kernel's pick
        s.bind((host, 0))
        return int(s.getsockname()[1])
