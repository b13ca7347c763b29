"""Dashboard logins: sessions in secure cookies, CSRF tokens on every form.

The session cookie is ``Secure; HttpOnly; SameSite=Strict`` and holds a random
token whose sha256 the store keeps (``LedgerStore.login``). Forms carry a CSRF
token checked on POST: before login, a double-submit cookie (random, sent as
cookie and hidden field, compared); after login, a token derived from the
session (so it changes with each session and a page on another site cannot
know it). Browsers keep ``Secure`` cookies on http://localhost and
http://127.0.0.1; anywhere else the ledger must be served over HTTPS.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

SESSION = "edgetally_session"
CSRF = "edgetally_csrf"
SESSION_TTL_S = 12 * 3600
MAX_FORM = 4096


async def current_user(request: Request, store: object) -> str | None:
    token = request.cookies.get(SESSION)
    if not token or len(token) > 200:
        return None
    user: str | None = await run_in_threadpool(store.session_user, token)  # type: ignore[attr-defined]
    return user


def session_csrf(request: Request) -> str:
    """The CSRF token of the forms shown to a logged-in user."""
    token = request.cookies.get(SESSION, "")
    return hashlib.sha256(b"edgetally-csrf:" + token.encode()).hexdigest()


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


def set_cookie(response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="strict"
    )


async def read_form(request: Request) -> dict[str, str] | None:
    """An urlencoded form of at most MAX_FORM bytes, one value per field; None if not one."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            return None
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        return None
    return {k: v[0] for k, v in fields.items() if len(v) == 1}


def same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


def safe_next(target: str | None) -> str:
    """Where to go after login: a path on this site only (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"
