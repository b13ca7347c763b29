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
import contextlib
import json
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from agent.epcis import EpcisPlaces, MappingError, document, to_event
from agent.epcis.events import offset_at
from agent.errors import (
    ConfigError,
    LedgerAuth,
    LedgerMisconfigured,
    LedgerRejected,
    PayloadTooLarge,
    SyncTransient,
)
from agent.outbox import Pending
from agent.sync.http_ledger import Result, parse_retry_after

Sleep = Callable[[float], Awaitable[None]]
_TRANSIENT = {408, 409, 425, 429}
BEHAVIOUR = "proceed"


@dataclass(frozen=True)
class EpcisSinkSettings:
    """One ``[[sync.sink]]`` table with ``type = "epcis"``. Keys:

    - ``url`` (required): the EPCIS repository's base URL; batches go to
      ``{url}/capture``. The reference ledger's is ``http://host:8080/epcis``.
    - ``token_file``: a file (mode 0600) holding the bearer token; none: no
      ``Authorization`` header (a repository on a trusted link).
    - ``stations``: a table ``station = "urn:epc:id:sgln:..."``, each station's
      readPoint and bizLocation.
    - ``default_read_point``, ``default_biz_location``: SGLNs for stations not in
      ``stations``; with neither, events have no readPoint / bizLocation.
    - ``timezone`` ("UTC"): the site's zone, for ``eventTimeZoneOffset``.
    - ``company_prefix_length`` (7): for GTINs GS1's prefix table does not cover.
    - ``timeout_s`` (10), ``verify_tls`` (true), ``ca_file``: as for the http-ledger sink.
    - ``poll_initial_s`` (0.05), ``poll_max_s`` (2), ``poll_timeout_s`` (60): how
      the capture job is followed; a job still running after ``poll_timeout_s``
      makes the batch a retry (resending is safe: eventIDs).
    """

    url: str
    token_file: Path | None = None
    places: EpcisPlaces = field(default_factory=EpcisPlaces)
    timeout_s: float = 10.0
    verify_tls: bool = True
    ca_file: Path | None = None
    poll_initial_s: float = 0.05
    poll_max_s: float = 2.0
    poll_timeout_s: float = 60.0

    @classmethod
    def from_table(cls, table: Mapping[str, Any], file: str, key: str) -> EpcisSinkSettings:
        """Check a TOML table; ConfigError names ``file``, ``key``.<name> and what was expected.

        ``type`` / ``kind`` and ``name`` belong to the ``[[sync.sink]]`` framework and are
        passed over here."""
        known = {
            "type", "kind", "name", "url", "token_file", "stations", "default_read_point", "default_biz_location",
            "timezone", "company_prefix_length", "timeout_s", "verify_tls", "ca_file",
            "poll_initial_s", "poll_max_s", "poll_timeout_s",
        }  # fmt: skip
        for name in table:
            if name not in known:
                raise ConfigError(
                    file,
                    f"{key}.{name}",
                    f"not a key of an epcis sink ({', '.join(sorted(known))})",
                )

        def text(name: str, required: bool = False) -> str | None:
            value = table.get(name)
            if value is None and not required:
                return None
            if not isinstance(value, str) or not value:
                raise ConfigError(file, f"{key}.{name}", "a non-empty string")
            return value

        def number(name: str, default: float, lo: float = 0.0) -> float:
            value = table.get(name, default)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= lo:
                raise ConfigError(file, f"{key}.{name}", f"a number > {lo:g}")
            return float(value)

        url = text("url", required=True)
        assert url is not None
        if not url.startswith(("http://", "https://")):
            raise ConfigError(file, f"{key}.url", "an http:// or https:// URL")
        stations = table.get("stations", {})
        if not isinstance(stations, Mapping):
            raise ConfigError(file, f"{key}.stations", "a table of station = SGLN URI")
        for station, sgln in stations.items():
            if problem := sgln_problem(sgln):
                raise ConfigError(file, f"{key}.stations.{station}", problem)
        defaults = {n: text(n) for n in ("default_read_point", "default_biz_location")}
        for name, value in defaults.items():
            if value is not None and (problem := sgln_problem(value)):
                raise ConfigError(file, f"{key}.{name}", problem)
        zone = text("timezone") or "UTC"
        if problem := timezone_problem(zone):
            raise ConfigError(file, f"{key}.timezone", problem)
        gcp = table.get("company_prefix_length", 7)
        if isinstance(gcp, bool) or not isinstance(gcp, int) or not 6 <= gcp <= 12:
            raise ConfigError(file, f"{key}.company_prefix_length", "an integer from 6 to 12")
        verify = table.get("verify_tls", True)
        if not isinstance(verify, bool):
            raise ConfigError(file, f"{key}.verify_tls", "true or false")
        token_file, ca_file = text("token_file"), text("ca_file")
        base = Path(file).parent
        return cls(
            url=url,
            token_file=None if token_file is None else base / token_file,
            places=EpcisPlaces(
                stations=dict(stations),
                default_read_point=defaults["default_read_point"],
                default_biz_location=defaults["default_biz_location"],
                timezone=zone,
                company_prefix_length=gcp,
            ),
            timeout_s=number("timeout_s", 10.0),
            verify_tls=verify,
            ca_file=None if ca_file is None else base / ca_file,
            poll_initial_s=number("poll_initial_s", 0.05),
            poll_max_s=number("poll_max_s", 2.0),
            poll_timeout_s=number("poll_timeout_s", 60.0),
        )


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


def read_token_file(path: Path, file: str, key: str) -> str:
    """The bearer token; refused when others can read the file, as ssh refuses a key."""
    try:
        mode = path.stat().st_mode & 0o777
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(
            file, key, f"a readable file holding the token; {path}: {reason}"
        ) from exc
    if mode & 0o044:
        raise ConfigError(file, key, f"a file only its owner can read; run `chmod 600 {path}`")
    if not token or any(c.isspace() for c in token) or not token.isprintable():
        raise ConfigError(file, key, f"{path} to hold one token on one line")
    return token


def make_epcis_sink(
    settings: EpcisSinkSettings,
    file: str = "",
    key: str = "sync.sink",
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Sleep = asyncio.sleep,
    wall: Callable[[], float] = time.time,
) -> EpcisSink:
    """The sink for one ``[[sync.sink]]`` table (reads the token file now)."""
    token = None
    if settings.token_file is not None:
        token = read_token_file(settings.token_file, file, f"{key}.token_file")
    return EpcisSink(settings, token, transport=transport, sleep=sleep, wall=wall)


class EpcisSink:
    """One httpx.AsyncClient for the agent's life; closed stays closed."""

    def __init__(
        self,
        settings: EpcisSinkSettings,
        token: str | None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
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
                event = to_event(json.loads(p.payload), self.settings.places)
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
        with self._map_errors():
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
            with self._map_errors():
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

    @contextlib.contextmanager
    def _map_errors(self) -> Iterator[None]:
        try:
            yield
        except httpx.TimeoutException as exc:
            raise SyncTransient(f"epcis {self.url}: timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            detail = str(exc) or type(exc).__name__
            raise SyncTransient(f"epcis {self.url}: unreachable ({detail})") from exc
        except httpx.HTTPError as exc:
            raise SyncTransient(f"epcis {self.url}: {exc}") from exc

    def _raise_for_status(self, response: httpx.Response, expected: int) -> None:
        """As the http-ledger sink: retry transients, alarm on auth, halve on 413, bisect on 400."""
        code = response.status_code
        if code == expected:
            return
        reason = _problem_text(response)
        what = f"epcis {response.request.url} answered {code}{': ' + reason if reason else ''}"
        if code in _TRANSIENT or code >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._wall())
            raise SyncTransient(what, retry_after=retry_after)
        if code in (401, 403):
            raise LedgerAuth(what + " (check the epcis sink's token_file)")
        if code == 413:
            raise PayloadTooLarge(what)
        if code in (400, 422) and response.request.method == "POST" and reason:
            raise LedgerRejected(what)  # about the document's contents: bisect to the bad event
        raise LedgerMisconfigured(what + " (check the epcis sink's url)")


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
    "EpcisSinkSettings",
    "make_epcis_sink",
    "read_token_file",
    "sgln_problem",
    "timezone_problem",
]
