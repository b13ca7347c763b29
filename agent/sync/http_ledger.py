"""The ``http-ledger`` sink: POST batches to /v1/movements, answers per movement.

HTTP is translated into our error tree here and nowhere else (httpx's
``map_httpcore_exceptions`` habit), so the retry policy above sees only
SyncTransient, LedgerMisconfigured/LedgerAuth, LedgerRejected, PayloadTooLarge.
"""

from __future__ import annotations

import email.utils
import json
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any, Literal

import httpx

from agent.errors import (
    LedgerAuth,
    LedgerMisconfigured,
    LedgerRejected,
    PayloadTooLarge,
    SyncError,
    SyncTransient,
)
from agent.outbox import Pending
from agent.sync.httperrors import transient_httpx_errors
from agent.urls import endpoint, redacted

_TRANSIENT = {408, 409, 425, 429}


@dataclass(frozen=True, slots=True)
class Result:
    id: str
    status: Literal["applied", "duplicate", "rejected"]
    reason: str | None = None


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


class HttpLedgerSink:
    """One httpx.AsyncClient for the agent's life; closed sinks stay closed."""

    def __init__(
        self,
        url: str,
        token: str,
        timeout_s: float = 10.0,
        verify_tls: bool = True,
        ca_file: Path | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        wall: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.url = endpoint(url, "/v1/movements")
        self.shown = redacted(str(self.url))  # what messages say: no password, no query values
        self._wall = wall or time.time
        verify: ssl.SSLContext | bool = verify_tls
        if verify_tls and ca_file is not None:
            verify = ssl.create_default_context(cafile=str(ca_file))
        self._client = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {token}", "User-Agent": "edgetally"},
            timeout=timeout_s,
            verify=verify,
            transport=transport,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> HttpLedgerSink:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def send(self, agent: str, batch: Sequence[Pending], batch_id: str) -> list[Result]:
        # The stored payloads are canonical JSON already: join them, do not re-encode.
        body = (
            '{"agent":'
            + json.dumps(agent)
            + ',"movements":['
            + ",".join(p.payload for p in batch)
            + "]}"
        ).encode("utf-8")
        with transient_httpx_errors(f"ledger {self.shown}"):
            response = await self._client.post(
                self.url,
                content=body,
                headers={"Content-Type": "application/json", "Idempotency-Key": f'"{batch_id}"'},
            )
            await response.aread()
        self._raise_for_status(response)
        return self._results(response, batch)

    def _raise_for_status(self, response: httpx.Response) -> None:
        code = response.status_code
        if code == 200:
            return
        reason = _error_text(response)
        what = f"ledger {self.shown} answered {code}{': ' + reason if reason else ''}"
        if code in _TRANSIENT or code >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._wall())
            raise SyncTransient(what, retry_after=retry_after)
        if code in (401, 403):
            raise LedgerAuth(what + " (check the agent id and sync.token_file)")
        if code == 413:
            raise PayloadTooLarge(what)
        if code in (400, 422) and _is_ledger_error(response):
            raise LedgerRejected(what)  # about the batch's contents: bisect to the bad one
        # A 415, or a 400 that is not the ledger's JSON error (a proxy's page), says
        # nothing about the movements: rejecting them would throw the backlog away.
        raise LedgerMisconfigured(what + " (check sync.url and what stands before the ledger)")

    def _results(self, response: httpx.Response, batch: Sequence[Pending]) -> list[Result]:
        try:
            doc: Any = response.json()
            raw = doc["results"]
            results = [_result(r) for r in raw if r.get("status") in _KNOWN]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # The batch may have been applied; resending is safe (ids are idempotent).
            raise SyncTransient(
                f"ledger {self.shown} answered 200 with an unreadable body"
            ) from exc
        answered = {r.id for r in results}
        missing = [p.id for p in batch if p.id not in answered]
        if missing:
            raise SyncTransient(
                f"ledger {self.shown} answered for {len(batch) - len(missing)} of {len(batch)} movements"
            )
        return results


# `conflict`: the ledger holds another movement under this id. It will never take
# ours, so to the outbox it is a rejection (kept, alarmed, not blocking the rest),
# with the reason saying which kind. Any other status is not an answer for that
# movement: the batch is sent again (ids are idempotent).
_KNOWN = ("applied", "duplicate", "rejected", "conflict")


def _result(r: Any) -> Result:
    if r["status"] == "conflict":
        reason = r.get("reason") or "id already used for a different movement"
        return Result(str(r["id"]), "rejected", f"conflict: {reason}")
    return Result(str(r["id"]), r["status"], r.get("reason"))


def _is_ledger_error(response: httpx.Response) -> bool:
    try:
        doc = response.json()
    except ValueError:
        return False
    return isinstance(doc, dict) and isinstance(doc.get("error"), str)


def _error_text(response: httpx.Response) -> str:
    try:
        doc = response.json()
    except ValueError:
        return response.text[:200].strip()
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        return str(doc["error"])[:200]
    return ""


__all__ = ["HttpLedgerSink", "Result", "SyncError", "parse_retry_after"]
