"""The ledger's EPCIS 2.0 face (REST bindings): capture jobs and the events query.

Under ``/epcis`` so it never meets ``/v1``; authenticated like ``/v1``: an
agent's bearer token captures (the captured movements belong to that agent) and
reads its own capture jobs; the events query, which shows every agent's, needs a
reader token or a dashboard login, as the stock does.
Refusals are RFC 7807 bodies (``application/problem+json``) that also carry
the ledger's usual ``error`` text, so both kinds of client read them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agent.epcis import CONTEXT
from ledger.epcis.convert import EventRefused, utc_time
from ledger.epcis.store import BEHAVIOURS, VALIDATION, EventQuery
from ledger.store import MAX_INT, MAX_PAGE, SqlStore

VERSION_HEADERS = {"GS1-EPCIS-Version": "2.0.0", "GS1-CBV-Version": "2.0.0"}
_MEDIA = ("application/json", "application/ld+json")


def problem(status: int, detail: str, kind: str = VALIDATION) -> JSONResponse:
    return JSONResponse(
        {"type": kind, "title": detail.split(":")[0][:80], "status": status, "detail": detail,
         "error": detail},
        status,
        media_type="application/problem+json",
        headers=VERSION_HEADERS,
    )  # fmt: skip


def routes(store: SqlStore, max_body_bytes: int, max_batch: int) -> list[Route]:
    # The app's request helpers; imported here because ledger.app imports this module.
    from ledger.app import _authenticate, _parse, _read_body, _reader

    limits = {
        **VERSION_HEADERS,
        "Allow": "OPTIONS, POST",
        "GS1-EPCIS-Capture-Limit": str(max_batch),
        "GS1-EPCIS-Capture-File-Size-Limit": str(max_body_bytes),
        "GS1-Capture-Error-Behaviour": ", ".join(BEHAVIOURS),
    }

    async def capture_options(request: Request) -> Response:
        return Response(status_code=204, headers=limits)

    async def post_capture(request: Request) -> Response:
        who = await _authenticate(request, store)
        if who.reader:
            return problem(403, "a reader token cannot capture events; use the agent's token")
        agent = who.name
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in _MEDIA:
            return problem(415, "expected Content-Type: application/json or application/ld+json",
                           "epcisException:UnsupportedMediaTypeException")  # fmt: skip
        behaviour = request.headers.get("GS1-Capture-Error-Behaviour", "rollback").strip()
        if behaviour not in BEHAVIOURS:
            return problem(
                400,
                f"GS1-Capture-Error-Behaviour: expected rollback or proceed, got {behaviour[:40]!r}",
            )
        doc = _parse(await _read_body(request, max_body_bytes))
        events = _event_list(doc)
        if isinstance(events, str):
            return problem(400, events)
        if len(events) > max_batch:
            return problem(413, f"epcisBody.eventList: at most {max_batch} events per capture",
                           "epcisException:CaptureLimitExceededException")  # fmt: skip
        job = await run_in_threadpool(store.epcis_capture, agent, events, behaviour)
        return Response(
            status_code=202,
            headers={**VERSION_HEADERS, "Location": f"/epcis/capture/{job['captureID']}"},
        )

    async def get_capture(request: Request) -> Response:
        agent = (await _authenticate(request, store)).name  # an agent sees its own jobs
        capture_id = request.path_params["capture_id"]
        job = None
        if len(capture_id) <= 64:
            job = await run_in_threadpool(store.epcis_job, capture_id, agent)
        if job is None:
            return problem(404, f"capture job {capture_id[:64]!r}: not found for this agent",
                           "epcisException:NoSuchResourceException")  # fmt: skip
        return JSONResponse(job, headers=VERSION_HEADERS)

    async def get_events(request: Request) -> Response:
        await _reader(request, store, "the EPCIS events")  # every agent's, like the stock
        try:
            query = _query(request)
        except ValueError as exc:
            return problem(400, str(exc), "epcisException:QueryParameterException")
        events, after = await run_in_threadpool(store.epcis_events, query)
        headers = dict(VERSION_HEADERS)
        if after is not None:
            params = [(k, v) for k, v in request.query_params.multi_items() if k != "nextPageToken"]
            link = f"/epcis/events?{urlencode([*params, ('nextPageToken', str(after))])}"
            headers["Link"] = f'<{link}>; rel="next"'
        body = {
            "@context": CONTEXT,
            "type": "EPCISQueryDocument",
            "schemaVersion": "2.0",
            "creationDate": datetime.now(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "epcisBody": {
                "queryResults": {
                    "queryName": "SimpleEventQuery",
                    "resultsBody": {"eventList": events},
                }
            },
        }
        return JSONResponse(body, headers=headers, media_type="application/ld+json")

    return [
        Route("/epcis/capture", capture_options, methods=["OPTIONS"]),
        Route("/epcis/capture", post_capture, methods=["POST"]),
        Route("/epcis/capture/{capture_id}", get_capture, methods=["GET"]),
        Route("/epcis/events", get_events, methods=["GET"]),
    ]


def _event_list(doc: Any) -> list[Any] | str:
    """The eventList of an EPCISDocument (or EPCISQueryDocument), or what is wrong with it."""
    if not isinstance(doc, dict):
        return "body: expected an EPCISDocument (a JSON object)"
    kind = doc.get("type")
    body = doc.get("epcisBody")
    if kind == "EPCISDocument":
        events = body.get("eventList") if isinstance(body, dict) else None
    elif kind == "EPCISQueryDocument":
        results = body.get("queryResults") if isinstance(body, dict) else None
        results_body = results.get("resultsBody") if isinstance(results, dict) else None
        events = results_body.get("eventList") if isinstance(results_body, dict) else None
    else:
        return f"type: expected EPCISDocument or EPCISQueryDocument, got {str(kind)[:40]!r}"
    if not isinstance(events, list):
        return "epcisBody.eventList: required, expected a list of events"
    return events


def _values(request: Request, name: str) -> tuple[str, ...]:
    out: list[str] = []
    for raw in request.query_params.getlist(name):
        out += [v.strip() for v in raw.split(",") if v.strip()]
    if any(len(v) > 512 for v in out) or len(out) > 100:
        raise ValueError(f"{name}: at most 100 values of at most 512 characters")
    return tuple(out)


def _time(request: Request, name: str) -> str | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        # An unencoded "+01:00" arrives as " 01:00".
        return utc_time(raw.replace(" ", "+"), name)
    except EventRefused as exc:
        raise ValueError(str(exc)) from exc


def _int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 20) or not lo <= int(raw) <= hi:
        raise ValueError(f"{name}: expected an integer from {lo} to {hi}")
    return int(raw)


_KNOWN_PARAMS = {
    "eventType", "EQ_bizStep", "GE_eventTime", "LT_eventTime", "MATCH_epc",
    "MATCH_epcClass", "perPage", "nextPageToken",
}  # fmt: skip


def _query(request: Request) -> EventQuery:
    unknown = sorted(set(request.query_params) - _KNOWN_PARAMS)
    if unknown:
        raise ValueError(
            f"{unknown[0][:60]}: not a query parameter this ledger answers "
            f"(it answers {', '.join(sorted(_KNOWN_PARAMS))})"
        )
    return EventQuery(
        event_types=_values(request, "eventType"),
        biz_steps=_values(request, "EQ_bizStep"),
        ge_event_time=_time(request, "GE_eventTime"),
        lt_event_time=_time(request, "LT_eventTime"),
        match_epc=_values(request, "MATCH_epc"),
        match_epc_class=_values(request, "MATCH_epcClass"),
        after=_int(request, "nextPageToken", 0, 0, MAX_INT),
        per_page=_int(request, "perPage", 100, 1, MAX_PAGE),
    )
