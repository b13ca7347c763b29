"""The ledger's HTTP face (DESIGN §5): the movements protocol over a `LedgerStore`.

Everything a client can send is answered with a 4xx and a JSON ``{"error": ...}``
that says what was wrong: the agent's sync decides from the status alone
whether to retry, halve, bisect or raise an alarm, so a client's mistake must
never look like the ledger's (5xx). Storage trouble (locked, disk full) is a
503, which the agent retries. Database work runs in the threadpool.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, NoReturn

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Lifespan, Message, Receive, Scope, Send

from agent.logs import event
from agent.model import MAX_TEXT
from ledger.epcis.routes import routes as epcis_routes
from ledger.openapi import OPENAPI
from ledger.pages import routes as dashboard_routes
from ledger.pages.auth import current_user
from ledger.store import MAX_INT, MAX_PAGE, READER, LedgerUnavailable, Principal, SqlStore
from ledger.valuation.http import routes as valuation_routes

MiB = 1024 * 1024
log = logging.getLogger("edgetally.ledger")
SILENT_AFTER_S = 900.0


def create_app(
    store: SqlStore,
    max_body_bytes: int = 8 * MiB,
    max_batch: int = 10_000,
    silent_after_s: float = SILENT_AFTER_S,
    lifespan: Lifespan[Starlette] | None = None,
) -> Starlette:
    """The ledger app; the caller owns ``store`` and closes it after the server stops.

    ``silent_after_s``: an agent not heard from for longer is shown ``silent``
    in the fleet view and raises a ledger alarm (once per silence).
    """
    writes = _Writes()

    async def post_movements(request: Request) -> Response:
        who = await _authenticate(request, store)
        if who.reader:
            _fail(403, "a reader token cannot post movements; post with the agent's token")
        agent = who.name
        media_type, _, params = request.headers.get("content-type", "").partition(";")
        if media_type.strip().lower() != "application/json":
            _fail(415, "expected Content-Type: application/json")
        charset = _charset(params)
        if charset is not None and charset not in ("utf-8", "utf8"):
            _fail(415, f"Content-Type charset {charset!r}: expected utf-8 (JSON is UTF-8)")
        body = _parse(await _read_body(request, max_body_bytes))
        if not isinstance(body, dict):
            _fail(400, "body: expected a JSON object")
        unknown = sorted(set(body) - {"agent", "movements"})
        if unknown:
            _fail(400, f"body.{unknown[0][:60]}: unknown field (expected agent and movements)")
        if not isinstance(body.get("agent"), str) or not body["agent"]:
            _fail(400, "body.agent: required, expected a non-empty string")
        movements = body.get("movements")
        if not isinstance(movements, list) or not movements:
            _fail(400, "body.movements: expected a non-empty list")
        if len(movements) > max_batch:
            _fail(413, f"body.movements: at most {max_batch} movements per request")
        if body["agent"] != agent:
            _fail(403, "body.agent is not the agent of this token")
        started = time.perf_counter()
        try:
            results = await run_in_threadpool(store.apply_batch, agent, movements)
        except (LedgerUnavailable, sqlite3.OperationalError) as exc:
            writes.failing = str(exc)  # /healthz says so until a batch is written again
            raise
        writes.failing = None
        _access_log(agent, results, time.perf_counter() - started)
        return JSONResponse({"results": results})

    async def get_stock(request: Request) -> Response:
        await _reader(request, store, "the stock of every location")
        item = _text_param(request, "item")
        location = _text_param(request, "location")
        rows = await run_in_threadpool(store.stock, item, location)
        return JSONResponse({"stock": rows})

    async def get_movements(request: Request) -> Response:
        who = await _authenticate(request, store, sessions=True)
        agent = _text_param(request, "agent")
        if not who.reader:
            if agent not in (None, who.name):
                _fail(403, f"an agent token reads only its own journal ({who.name}); {_NEEDS}")
            agent = who.name
        since = _int_param(request, "since", 0, 0, MAX_INT)
        limit = _int_param(request, "limit", 100, 1, MAX_PAGE)
        entries, next_pos = await run_in_threadpool(store.journal, agent, since, limit)
        return JSONResponse({"movements": entries, "next": next_pos})

    async def whoami(request: Request) -> Response:
        """The token's agent: what `edgetally doctor` compares with its config's agent.id."""
        who = await _authenticate(request, store)
        if who.reader:
            return JSONResponse({"reader": who.name})
        return JSONResponse({"agent": who.name})

    async def get_agents(request: Request) -> Response:
        await _reader(request, store, "the fleet")
        await run_in_threadpool(store.check_silence, silent_after_s)
        agents = await run_in_threadpool(store.agents, silent_after_s)
        return JSONResponse(
            {"silent_after_s": silent_after_s, "agents": [a.to_dict() for a in agents]}
        )

    async def get_alarms(request: Request) -> Response:
        await _reader(request, store, "the alarms")
        limit = _int_param(request, "limit", 100, 1, MAX_PAGE)
        return JSONResponse({"alarms": await run_in_threadpool(store.alarms, limit)})

    async def healthz(request: Request) -> Response:
        if writes.failing is not None:
            return JSONResponse(
                {"status": "failing", "error": "writes fail: the last batch could not be stored"},
                503,
                {"Retry-After": "1"},
            )
        return JSONResponse({"status": "ok"})

    async def openapi(request: Request) -> Response:
        return JSONResponse(OPENAPI)

    routes = [
        Route("/v1/movements", post_movements, methods=["POST"]),
        Route("/v1/movements", get_movements, methods=["GET"]),
        Route("/v1/stock", get_stock, methods=["GET"]),
        Route("/v1/whoami", whoami, methods=["GET"]),
        Route("/v1/agents", get_agents, methods=["GET"]),
        Route("/v1/alarms", get_alarms, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        *epcis_routes(store, max_body_bytes, max_batch),  # EPCIS 2.0 capture and query
        *dashboard_routes(store, silent_after_s),  # the site dashboard (ledger/pages)
        *valuation_routes(store, lambda request: _reader(request, store, "the valuation")),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(_NoBodyForHead)],
        exception_handlers={
            HTTPException: _http_error,
            sqlite3.OperationalError: _storage_error,
            LedgerUnavailable: _storage_error,
            ClientDisconnect: _client_gone,
        },
    )


class _NoBodyForHead:
    """HEAD answers carry headers only (RFC 9110 §9.3.2), whatever server runs the app:
    uvicorn drops such a body, an ASGI test client or another server may not."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app(scope, receive, headers_only)


@dataclass(slots=True)
class _Writes:
    """Whether this process's last batch failed to be stored: /healthz answers 503 then,
    so a load balancer or monitor sees a ledger that takes no writes as down."""

    failing: str | None = None


def _charset(params: str) -> str | None:
    """The ``charset`` parameter of a Content-Type's parameters, lowercased, if any."""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


def _access_log(agent: str, results: list[dict[str, Any]], seconds: float) -> None:
    """One line per batch: who sent how many, what became of them, how long it took."""
    statuses = Counter(r["status"] for r in results)
    event(
        log,
        "batch",
        agent=agent,
        count=len(results),
        applied=statuses["applied"],
        duplicate=statuses["duplicate"],
        rejected=statuses["rejected"],
        ms=round(seconds * 1000, 1),
    )


def _fail(status: int, message: str, headers: dict[str, str] | None = None) -> NoReturn:
    raise HTTPException(status, message, headers)


def _unavailable() -> HTTPException:
    return HTTPException(503, "ledger storage is busy or unavailable; retry", {"Retry-After": "1"})


async def _http_error(request: Request, exc: Exception) -> Response:
    """Every refusal, ours or Starlette's (404, 405), as ``{"error": ...}``."""
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)


async def _storage_error(request: Request, exc: Exception) -> Response:
    """Locked, busy, full or the database down: the ledger's trouble, not the client's;
    worth a retry."""
    return await _http_error(request, _unavailable())


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The client left mid-body; nobody reads this answer, but it is not a 500."""
    return Response(status_code=400)


_NEEDS = "reading everything needs a reader token (ledger token create --reader NAME)"


async def _authenticate(request: Request, store: SqlStore, sessions: bool = False) -> Principal:
    """The token's agent or reader, or 401 with a ``WWW-Authenticate: Bearer`` challenge.

    With ``sessions``, a logged-in dashboard user (the session cookie) reads as a reader.
    """
    header = request.headers.get("authorization")
    if header is None and sessions:
        user = await current_user(request, store)
        if user is not None:
            return Principal(user, READER)
    scheme, _, token = (header or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        _fail(
            401,
            "expected Authorization: Bearer <token>",
            {"WWW-Authenticate": 'Bearer realm="edgetally"'},
        )
    who = await run_in_threadpool(store.principal_for_token, token)
    if who is None:
        _fail(
            401,
            "unknown token",
            {"WWW-Authenticate": 'Bearer realm="edgetally", error="invalid_token"'},
        )
    return who


async def _reader(request: Request, store: SqlStore, what: str) -> Principal:
    """A reader token or a dashboard login; an agent token gets 403 saying what it needs."""
    who = await _authenticate(request, store, sessions=True)
    if not who.reader:
        _fail(403, f"an agent token cannot read {what}; {_NEEDS}")
    return who


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known (or seen) to exceed ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit() and len(declared) <= 20):
            _fail(400, "Content-Length: expected a number")
        if int(declared) > limit:
            _fail(413, f"body larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            _fail(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _parse(body: bytes) -> Any:
    """JSON only: no NaN/Infinity (they could never be answered back as JSON)."""
    try:
        return json.loads(body, parse_constant=_no_constants)
    except RecursionError:
        _fail(400, "body: JSON nested too deeply")
    except UnicodeDecodeError:
        _fail(400, "body: not UTF-8 text")
    except json.JSONDecodeError as exc:
        _fail(400, f"body: not JSON ({exc.msg} at position {exc.pos})")
    except ValueError as exc:
        _fail(400, f"body: not JSON ({exc})")


def _text_param(request: Request, name: str) -> str | None:
    value = request.query_params.get(name) or None
    if value is not None and len(value) > MAX_TEXT:
        _fail(400, f"{name}: longer than {MAX_TEXT} characters")
    return value


def _int_param(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 20) or not lo <= int(raw) <= hi:
        _fail(400, f"{name}: expected an integer from {lo} to {hi}")
    return int(raw)
