"""The ``epcis`` sink: movements as GS1 EPCIS 2.0 ObjectEvents, to ``POST {url}/capture``.

One batch is one EPCISDocument, sent with ``GS1-Capture-Error-Behaviour:
proceed`` so one bad event does not hold back the rest. The repository answers
``202`` and a ``Location`` for the capture job; the sink asks the job for its
outcome with a bounded backoff (``poll_initial_s`` doubling to ``poll_max_s``,
for at most ``poll_timeout_s``). An event named in the job's ``errors`` (by
its eventID in ``instance``) is that movement's rejection, with the reason;
every other event of a finished job is delivered (``applied``, or
``duplicate`` where the repository says it held the event already).

Why a resend is safe: ``POST /capture`` has no idempotency key in the
standard, so exactly-once rests on the eventID, ``urn:uuid:<movement id>``,
the same on every send. The reference ledger (and any repository that keeps
eventIDs unique, as the standard's ``POST /events`` does with its 409) answers
a resent event as already held, never as a second stock move. A repository
that stores a second copy of an eventID would double-count after a lost
answer: check yours before trusting it with a flaky link.

A server that ignores ``proceed`` and rolls the whole capture back on one
error answers ``success: false`` with nothing captured: the sink then raises
LedgerRejected, and the Syncer bisects to the bad event and delivers the rest.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import httpx

from agent.config.sinks import EpcisSinkConfig
from agent.epcis import EpcisPlaces, MappingError, document, to_event
from agent.epcis.events import offset_at
from agent.errors import (
    LedgerMisconfigured,
    LedgerRejected,
    SyncTransient,
)
from agent.outbox import Pending
from agent.sync.http_ledger import Result
from agent.sync.httperrors import answer_error, transient_httpx_errors

Sleep = Callable[[float], Awaitable[None]]
BEHAVIOUR = "proceed"


def sgln_problem(value: object) -> str | None:
    """None for a valid SGLN URI, else what was expected (for a ConfigError)."""
    from epcpy.epc_schemes.sgln import SGLN
    from epcpy.utils.common import ConvertException

    if not isinstance(value, str) or not value.startswith("urn:epc:id:sgln:"):
        return "an SGLN URI, urn:epc:id:sgln:<company prefix>.<location ref>.<extension>"
    try:
        SGLN(value)
    except (ConvertException, ValueError, IndexError):
        return f"a valid SGLN URI; {value!r} is not one"
    return None


def timezone_problem(zone: str) -> str | None:
    """None for a time zone the site's offsets can be taken from, else what was expected."""
    try:
        offset_at(datetime.now(UTC), zone)
    except MappingError as exc:
        return f"an IANA time zone name ({exc})"
    return None


class EpcisSink:
    """One httpx.AsyncClient for the agent's life; closed stays closed.

    Made from its checked ``[[sync.sink]]`` table and the token its ``token_file``
    holds (``agent.sync.registry`` reads both through ``agent.config``); no token,
    no ``Authorization`` header."""

    def __init__(
        self,
        settings: EpcisSinkConfig,
        token: str | None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.places = EpcisPlaces(
            stations=dict(settings.stations),
            default_read_point=settings.default_read_point,
            default_biz_location=settings.default_biz_location,
            timezone=settings.timezone,
            company_prefix_length=settings.company_prefix_length,
        )
        self.url = settings.url.rstrip("/") + "/capture"
        self._sleep = sleep
        self._wall = wall
        verify: ssl.SSLContext | bool = settings.verify_tls
        if settings.verify_tls and settings.ca_file is not None:
            verify = ssl.create_default_context(cafile=str(settings.ca_file))
        headers = {
            "User-Agent": "edgetally",
            "GS1-EPCIS-Version": "2.0.0",
            "GS1-CBV-Version": "2.0.0",
        }
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=settings.timeout_s,
            verify=verify,
            transport=transport,
            follow_redirects=False,
        )
        self._closed = False
        self.polls: list[float] = []  # every wait chosen while following a job (bounded)

    async def aclose(self) -> None:
        self._closed = True
        await self._client.aclose()

    async def send(self, agent: str, batch: Sequence[Pending], batch_id: str) -> list[Result]:
        if self._closed:
            raise RuntimeError("the epcis sink is closed")
        answers: dict[str, Result] = {}
        events: list[dict[str, Any]] = []
        by_event: dict[str, str] = {}
        for p in batch:
            try:
                event = to_event(json.loads(p.payload), self.places)
            except MappingError as exc:
                answers[p.id] = Result(p.id, "rejected", f"not an EPCIS event: {exc}")
                continue
            events.append(event)
            by_event[event["eventID"]] = p.id
        if events:
            answers.update(await self._capture(events, by_event, batch_id))
        return [answers[p.id] for p in batch]

    async def _capture(
        self, events: list[dict[str, Any]], by_event: dict[str, str], batch_id: str
    ) -> dict[str, Result]:
        body = json.dumps(document(events, datetime.fromtimestamp(self._wall(), UTC))).encode()
        with transient_httpx_errors(f"epcis {self.url}"):
            response = await self._client.post(
                self.url,
                content=body,
                headers={
                    "Content-Type": "application/ld+json",
                    "GS1-Capture-Error-Behaviour": BEHAVIOUR,
                    "Idempotency-Key": f'"{batch_id}"',
                },
            )
            await response.aread()
        self._raise_for_status(response, 202)
        location = response.headers.get("Location")
        if not location:
            raise LedgerMisconfigured(
                f"epcis {self.url} answered 202 without a Location for the capture job"
            )
        job_url = urljoin(self.url, location)
        if httpx.URL(job_url).netloc != httpx.URL(self.url).netloc or not job_url.startswith(
            ("http://", "https://")
        ):
            # The token goes with every request: never to a host the config did not name.
            raise LedgerMisconfigured(
                f"epcis {self.url}: the capture job is on another host ({job_url[:120]}); "
                "not following it with our token"
            )
        job = await self._follow(job_url)
        return _outcome(job, by_event, self.url)

    async def _follow(self, job_url: str) -> dict[str, Any]:
        """Ask the job until it has finished, waiting longer each time, within the bound."""
        waited, wait = 0.0, self.settings.poll_initial_s
        while True:
            with transient_httpx_errors(f"epcis {self.url}"):
                response = await self._client.get(job_url)
                await response.aread()
            self._raise_for_status(response, 200)
            try:
                job = response.json()
                running = job["running"]
            except (ValueError, KeyError, TypeError) as exc:
                raise SyncTransient(f"epcis {job_url}: an unreadable capture job") from exc
            if running is False:
                if not isinstance(job, dict):
                    raise SyncTransient(f"epcis {job_url}: an unreadable capture job")
                return job
            if waited >= self.settings.poll_timeout_s:
                raise SyncTransient(
                    f"epcis {job_url}: capture job still running after {waited:.1f}s "
                    "(the batch is sent again; its eventIDs make that safe)"
                )
            wait = min(wait, self.settings.poll_timeout_s - waited, self.settings.poll_max_s)
            self.polls.append(wait)
            del self.polls[:-1000]
            await self._sleep(wait)
            waited += wait
            wait = min(wait * 2, self.settings.poll_max_s)

    def _raise_for_status(self, response: httpx.Response, expected: int) -> None:
        """As the http-ledger sink: retry transients, alarm on auth, halve on 413, bisect on 400."""
        if response.status_code == expected:
            return
        reason = _problem_text(response)
        raise answer_error(
            response,
            f"epcis {response.request.url}",
            reason,
            self._wall(),
            # a problem about the document's contents: bisect to the bad event
            about_contents=response.request.method == "POST" and bool(reason),
            auth_hint="check the epcis sink's token_file",
            config_hint="check the epcis sink's url",
        )


def _outcome(job: Mapping[str, Any], by_event: Mapping[str, str], url: str) -> dict[str, Result]:
    """Per movement: its event's error, else delivered (applied, or duplicate if the job says)."""
    errors = job.get("errors") or []
    if not isinstance(errors, list):
        raise SyncTransient(f"epcis {url}: the capture job's errors are not a list")
    failed: dict[str, str] = {}
    unplaced: list[str] = []
    for error in errors:
        detail = _error_detail(error)
        instance = error.get("instance") if isinstance(error, dict) else None
        if isinstance(instance, str) and instance in by_event:
            failed[instance] = detail
        else:
            unplaced.append(detail)
    if job.get("success") is False and not errors:
        where = job.get("errorFile")
        unplaced.append(
            f"the job failed and lists no errors{f' (errorFile {where})' if where else ''}"
        )
    if unplaced or (job.get("success") is False and job.get("captureErrorBehaviour") == "rollback"):
        # Errors we cannot pin on an event, or a capture rolled back whole:
        # one event is rejected with them; a batch is split until it is one.
        reasons = "; ".join([*failed.values(), *unplaced])[:500]
        if len(by_event) == 1:
            [(eid, mid)] = by_event.items()
            return {mid: Result(mid, "rejected", f"epcis capture failed: {reasons}")}
        raise LedgerRejected(f"epcis {url}: capture failed ({reasons})")
    duplicates = job.get("edgetally:duplicates") or []
    held = set(duplicates) if isinstance(duplicates, list) else set()
    out: dict[str, Result] = {}
    for eid, mid in by_event.items():
        if eid in failed:
            out[mid] = Result(mid, "rejected", f"epcis capture: {failed[eid]}")
        else:
            out[mid] = Result(mid, "duplicate" if eid in held else "applied")
    return out


def _error_detail(error: object) -> str:
    if not isinstance(error, dict):
        return str(error)[:300]
    parts = [str(error[k]) for k in ("title", "detail") if isinstance(error.get(k), str)]
    return (": ".join(parts) or str(error.get("type") or error))[:300]


def _problem_text(response: httpx.Response) -> str:
    """The refusal's words: RFC 7807 ``detail``/``title``, or the ledger's ``error``."""
    try:
        doc = response.json()
    except ValueError:
        return ""
    if not isinstance(doc, dict):
        return ""
    for key in ("detail", "error", "title"):
        if isinstance(doc.get(key), str):
            return str(doc[key])[:200]
    return ""


__all__ = [
    "EpcisSink",
    "sgln_problem",
    "timezone_problem",
]
