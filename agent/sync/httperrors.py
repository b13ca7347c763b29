"""httpx's errors become ours where a sink talks HTTP, the way httpx's own
``map_httpcore_exceptions()`` maps the layer below it: every sink that speaks HTTP
(http-ledger, epcis, tryton) says the same thing for a timeout or an unreachable
peer, and the Syncer retries exactly ``SyncTransient``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx

from agent.errors import SyncTransient


@contextlib.contextmanager
def transient_httpx_errors(where: str) -> Iterator[None]:
    """An httpx error inside becomes SyncTransient, its message led by ``where``
    (the sink and its URL, secrets masked)."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise SyncTransient(f"{where}: timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        detail = str(exc) or type(exc).__name__
        raise SyncTransient(f"{where}: unreachable ({detail})") from exc
    except httpx.HTTPError as exc:
        raise SyncTransient(f"{where}: {exc}") from exc
