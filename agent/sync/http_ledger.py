"""The ``http-ledger`` sink: POST batches to /v1/movements, answers per movement.

Its HTTP answers and httpx's errors become our error tree through
``agent.sync.httperrors``, as every HTTP sink's do; what is the ledger's own is
here: which 400 is the ledger refusing a batch, and its per-movement results.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

from agent.errors import SyncError, SyncTransient
from agent.outbox import Pending
from agent.sync.httperrors import answer_error, transient_httpx_errors
from agent.urls import endpoint, redacted


@dataclass(frozen=True, slots=True)
class Result:
    id: str
    status: Literal["applied", "duplicate", "rejected"]
    reason: str | None = None


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
        if response.status_code == 200:
            return
        raise answer_error(
            response,
            f"ledger {self.shown}",
            _error_text(response),
            self._wall(),
            # A 415, or a 400 that is not the ledger's JSON error (a proxy's page), says
            # nothing about the movements: rejecting them would throw the backlog away.
            about_contents=_is_ledger_error(response),
            auth_hint="check the agent id and sync.token_file",
            config_hint="check sync.url and what stands before the ledger",
        )

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


__all__ = ["HttpLedgerSink", "Result", "SyncError"]
