"""The valuation's HTTP face: ``GET /v1/entries``, ``/v1/reports/<name>``, ``/v1/items``,
``/v1/alerts`` (open low-stock alerts, ``?all=1`` with the cleared, and their counts);
JSON, or CSV with ``Accept: text/csv`` or ``?format=csv``.

Read with a reader token or a dashboard login, like the stock and the fleet (an
agent token reads only its own journal); a bad parameter is a 400 naming it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ledger.valuation import alerts, reports
from ledger.valuation.money import ValuationError

Auth = Callable[[Request], Awaitable[object]]
MAX_PAGE = 1000


def routes(store: Any, authenticate: Auth) -> list[Route]:
    """``store``: a `SqlStore` (its ``read``); ``authenticate``: the app's reader check."""

    async def get_entries(request: Request) -> Response:
        await authenticate(request)
        movement = _text(request, "movement")
        since = _int(request, "since", 0, 0, reports.MAX_POS)
        limit = _int(request, "limit", 100, 1, MAX_PAGE)
        found, nxt = await run_in_threadpool(
            store.read, lambda db: reports.entries(db, movement, since, limit)
        )
        if _wants_csv(request):
            return _csv(reports.entry_lines(found))
        return JSONResponse({"entries": found, "next": nxt})

    async def get_report(request: Request) -> Response:
        await authenticate(request)
        name = request.path_params["name"]
        if name not in reports.REPORTS:
            raise HTTPException(
                404, f"no report {name!r}; expected one of {', '.join(reports.REPORTS)}"
            )
        work = _report(name, request)
        try:
            rows = await run_in_threadpool(store.read, work)
        except ValuationError as exc:
            raise HTTPException(400, str(exc)) from exc
        if _wants_csv(request):
            return _csv(rows)
        return JSONResponse({"report": name, "rows": rows})

    async def get_alerts(request: Request) -> Response:
        await authenticate(request)
        everything = request.query_params.get("all") in ("1", "true")
        found = await run_in_threadpool(store.read, lambda db: alerts.list_alerts(db, everything))
        if _wants_csv(request):
            return _csv(found["alerts"])
        return JSONResponse(found)

    return [
        Route("/v1/alerts", get_alerts, methods=["GET"]),
        Route("/v1/entries", get_entries, methods=["GET"]),
        Route("/v1/reports/{name}", get_report, methods=["GET"]),
    ]


def _report(name: str, request: Request) -> Callable[[Any], list[dict[str, Any]]]:
    start, end = _text(request, "from"), _text(request, "to")
    item, location = _text(request, "item"), _text(request, "location")
    if name == "stock-value":
        return lambda db: reports.stock_value(db, item, location)
    if name == "cogs":
        return lambda db: reports.cogs(db, start, end)
    if name == "identity":
        period = _text(request, "period")
        return lambda db: reports.identity(db, period)
    if name == "turnover":
        return lambda db: reports.turnover(db, start, end)
    if name == "shrinkage":
        return lambda db: reports.shrinkage(db, start, end)
    at = _text(request, "at")
    if at is None:
        raise HTTPException(400, "at: required, an ISO 8601 time such as 2026-05-01T12:00:00Z")
    return lambda db: reports.as_of(db, at, item, location)


def _wants_csv(request: Request) -> bool:
    fmt = request.query_params.get("format")
    if fmt is not None and fmt not in ("csv", "json"):
        raise HTTPException(400, f"format: expected csv or json, got {fmt[:40]!r}")
    if fmt is not None:
        return fmt == "csv"
    return "text/csv" in request.headers.get("accept", "")


def _csv(rows: Sequence[dict[str, Any]]) -> Response:
    out = io.StringIO()
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    writer = csv.DictWriter(out, columns, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8")


def _text(request: Request, name: str) -> str | None:
    value = request.query_params.get(name) or None
    if value is not None and len(value) > 512:
        raise HTTPException(400, f"{name}: longer than 512 characters")
    return value


def _int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 20) or not lo <= int(raw) <= hi:
        raise HTTPException(400, f"{name}: expected an integer from {lo} to {hi}")
    return int(raw)
