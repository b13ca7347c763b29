"""The site dashboard's routes: ``/`` (stock, agents, alerts, live feed, charts),
``/item/<item>`` (its journal and stock over time), ``/login``, ``/logout`` and
the feed fragment the page polls. Read-only: the only forms log in and out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ledger.pages import auth, charts, data

SILENT_CHOICES = (60, 300, 900, 3600, 86400)
SILENT_DEFAULT = 900
POLL_MS = 1000
MAX_QUERY = 100
_STATIC = {"dash.css": "text/css; charset=utf-8", "dash.js": "text/javascript; charset=utf-8"}
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def routes(store: Any, silent_after_s: float = SILENT_DEFAULT) -> list[BaseRoute]:
    """The dashboard's routes over ``store``; mounted beside the API by ``create_app``.

    ``silent_after_s``: the ledger's silence window, the agents table's default.
    """
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ledger.pages", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["url"] = lambda s: quote(str(s), safe="")
    static = {
        name: resources.files("ledger.pages").joinpath("static", name).read_bytes()
        for name in _STATIC
    }

    def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(**context), status, HEADERS)

    def to_login(request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", 303, HEADERS)

    def login_page(request: Request, status: int = 200, error: str | None = None) -> Response:
        csrf = auth.new_login_csrf()
        nxt = auth.safe_next(request.query_params.get("next"))
        response = page("login.html", status, csrf=csrf, next=nxt, error=error)
        auth.set_cookie(response, auth.CSRF, csrf, 3600)
        return response

    async def get_login(request: Request) -> Response:
        return login_page(request)

    async def post_login(request: Request) -> Response:
        form = await auth.read_form(request)
        if form is None or not auth.same(form.get("csrf"), request.cookies.get(auth.CSRF)):
            return login_page(
                request, 403, "This form had expired or came from another page; try again."
            )
        name, password = form.get("name", ""), form.get("password", "")
        token = None
        if name and password and len(name) <= 200 and len(password) <= 1024:
            token = await run_in_threadpool(store.login, name, password, auth.SESSION_TTL_S)
        if token is None:  # the form again, as 200 like most sites: a 4xx page is a console error
            return login_page(request, 200, "Wrong name or password.")
        response = RedirectResponse(auth.safe_next(form.get("next")), 303, HEADERS)
        auth.set_cookie(response, auth.SESSION, token, auth.SESSION_TTL_S)
        response.delete_cookie(auth.CSRF, path="/", secure=True, httponly=True, samesite="strict")
        return response

    async def post_logout(request: Request) -> Response:
        form = await auth.read_form(request)
        user = await auth.current_user(request, store)
        if user is None:
            return to_login(request)
        if form is None or not auth.same(form.get("csrf"), auth.session_csrf(request)):
            return page("error.html", 403, message="This form had expired; go back and try again.")
        await run_in_threadpool(store.session_user, request.cookies[auth.SESSION], True)
        response = RedirectResponse("/login", 303, HEADERS)
        response.delete_cookie(
            auth.SESSION, path="/", secure=True, httponly=True, samesite="strict"
        )
        return response

    async def dashboard(request: Request) -> Response:
        user = await auth.current_user(request, store)
        if user is None:
            return to_login(request)
        q = request.query_params.get("q", "").strip()[:MAX_QUERY]
        location = request.query_params.get("location", "")[:MAX_QUERY]
        silent = _seconds(request.query_params.get("silent_after"), int(silent_after_s))
        stock, entries = await run_in_threadpool(
            lambda: (store.stock(None, None), data.journal(store))
        )
        fleet = await run_in_threadpool(data.fleet, store, entries, silent)
        alarms = await run_in_threadpool(data.alarms, store)
        needle = q.lower()
        rows = [
            r
            for r in stock
            if (not needle or needle in r["item"].lower() or needle in r["location"].lower())
            and (not location or r["location"] == location)
        ]
        feed = entries[-data.FEED_SIZE :][::-1]
        return page(
            "dashboard.html",
            user=user,
            csrf=auth.session_csrf(request),
            q=q,
            location=location,
            locations=sorted({r["location"] for r in stock}),
            rows=rows,
            total=sum(r["qty"] for r in rows),
            agents=fleet,
            silent_after=silent,
            silent_choices=SILENT_CHOICES,
            alarms=alarms,
            feed=feed,
            since=entries[-1]["pos"] if entries else 0,
            bars=charts.hour_bars(data.per_hour(entries, datetime.now(UTC))),
            hours=data.HOURS,
            poll_ms=POLL_MS,
            item_key=data.item_key,
        )

    async def item_page(request: Request) -> Response:
        user = await auth.current_user(request, store)
        if user is None:
            return to_login(request)
        item = request.path_params["item"][:MAX_QUERY]
        stock, entries = await run_in_threadpool(
            lambda: (store.stock(item, None), data.journal(store))
        )
        history, series = data.item_history(entries, item)
        if not stock and not history:
            return page("error.html", 404, message=f"No item {item!r} in the ledger.")
        return page(
            "item.html",
            user=user,
            csrf=auth.session_csrf(request),
            item=item,
            rows=stock,
            total=sum(r["qty"] for r in stock),
            history=history[::-1],
            line=charts.step_line(series),
            chart=charts,
            item_key=data.item_key,
        )

    async def feed(request: Request) -> Response:
        if await auth.current_user(request, store) is None:
            return Response("log in again", 401, headers=HEADERS)
        raw = request.query_params.get("since", "0")
        since = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 16 else 0
        entries, next_pos = await run_in_threadpool(store.journal, None, since, 100)
        html = env.get_template("feed_rows.html").render(feed=entries[::-1], item_key=data.item_key)
        return HTMLResponse(html, 200, {**HEADERS, "X-Next-Since": str(next_pos)})

    async def static_file(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in static:
            return Response("not found", 404, media_type="text/plain")
        return Response(
            static[name], 200, media_type=_STATIC[name], headers={"Cache-Control": "max-age=300"}
        )

    return [
        Route("/", dashboard, methods=["GET"]),
        Route("/item/{item:path}", item_page, methods=["GET"]),
        Route("/login", get_login, methods=["GET"]),
        Route("/login", post_login, methods=["POST"]),
        Route("/logout", post_logout, methods=["POST"]),
        Route("/dash/feed", feed, methods=["GET"]),
        Route("/dash/static/{name}", static_file, methods=["GET"]),
    ]


def _seconds(raw: str | None, default: int) -> int:
    """A silence window in seconds (the select offers a few; any from 1 s to a week goes)."""
    if raw and raw.isascii() and raw.isdigit() and len(raw) <= 7 and 1 <= int(raw) <= 604800:
        return int(raw)
    return default
