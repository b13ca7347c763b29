"""HTTP becomes our error tree here, for every sink that speaks it (http-ledger,
epcis, tryton), the way httpx's own ``map_httpcore_exceptions()`` maps the layer
below it: the retry policy above sees only SyncTransient, LedgerMisconfigured /
LedgerAuth, LedgerRejected and PayloadTooLarge, and each sink says the same thing
for the same failure."""

from __future__ import annotations

import contextlib
import email.utils
from collections.abc import Iterator
from datetime import UTC

import httpx

from agent.errors import (
    LedgerAuth,
    LedgerMisconfigured,
    LedgerRejected,
    PayloadTooLarge,
    SyncError,
    SyncTransient,
)

# Answers worth sending the same batch again for (DESIGN §5), besides every 5xx.
TRANSIENT_STATUS = frozenset({408, 409, 425, 429})


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


def answer_error(
    response: httpx.Response,
    where: str,
    reason: str,
    now: float,
    *,
    about_contents: bool,
    auth_hint: str,
    config_hint: str,
) -> SyncError:
    """The error for an answer that is not the one expected (DESIGN §5): retry 408,
    409, 425, 429 and 5xx (after Retry-After); 401/403 is a configuration alarm; 413
    halves the batch; a 400/422 ``about_contents`` (the sink's own refusal of the
    batch, not a proxy's page) bisects to the bad movement; anything else says nothing
    about the movements and is a configuration problem, never their rejection."""
    code = response.status_code
    what = f"{where} answered {code}{': ' + reason if reason else ''}"
    if code in TRANSIENT_STATUS or code >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
        return SyncTransient(what, retry_after=retry_after)
    if code in (401, 403):
        return LedgerAuth(f"{what} ({auth_hint})")
    if code == 413:
        return PayloadTooLarge(what)
    if code in (400, 422) and about_contents:
        return LedgerRejected(what)
    return LedgerMisconfigured(f"{what} ({config_hint})")


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Retry-After in either form (delay-seconds or HTTP-date), as seconds from ``now``."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)
