"""Give the heap freed during start-up back to the system, once.

Importing biip parses a 5 MB JSON trie of GS1 company prefixes; glibc keeps
the freed parse buffers resident (about 3-9 MB of RSS on a Pi) unless asked
to trim. The systemd unit also sets MALLOC_TRIM_THRESHOLD_, but the agent is
not always started by the unit (a shell, the demo, the benchmarks), so it
asks glibc itself. Not glibc (musl, macOS): nothing to do.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util


def release_freed_heap() -> bool:
    """malloc_trim(0); whether glibc gave memory back."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    with contextlib.suppress(OSError, AttributeError):
        return bool(ctypes.CDLL(name).malloc_trim(0))
    return False
