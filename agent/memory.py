"""Memory after start-up: the freed heap given back, what lives on kept out of full collections.

Importing biip parses a 5 MB JSON trie of GS1 company prefixes; glibc keeps
the freed parse buffers resident (about 3-9 MB of RSS on a Pi) unless asked
to trim. The systemd unit also sets MALLOC_TRIM_THRESHOLD_, but the agent is
not always started by the unit (a shell, the demo, the benchmarks), so it
asks glibc itself. Not glibc (musl, macOS): nothing to do.

An RFID reader makes the agent allocate tens of thousands of objects a second
(reads, rulings, commits), and some live a while (queued reads, a portal's
tracks), so Python's full (generation 2) collections come every second or so,
and each walked every object start-up left: modules, config, the GS1 tables,
~100,000 objects, 0.1 s a pass on the dev box (measured with ``gc.callbacks``
during ``bench.rfid --tags 1000``). ``kept_out_of_full_collections`` moves
them to the permanent generation once start-up is over (``gc.freeze``, made
for this), after one collection so no garbage is kept; a full collection then
walks only what the daemon made since, 0.01 s. They come back (``gc.unfreeze``)
when the daemon stops, so an in-process run (the tests, the benchmarks) leaves
the collector as it found it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
from collections.abc import Iterator


def release_freed_heap() -> bool:
    """malloc_trim(0); whether glibc gave memory back."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    with contextlib.suppress(OSError, AttributeError):
        return bool(ctypes.CDLL(name).malloc_trim(0))
    return False


@contextlib.contextmanager
def kept_out_of_full_collections() -> Iterator[None]:
    """What is alive now is left out of the collector's passes until the block ends."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
