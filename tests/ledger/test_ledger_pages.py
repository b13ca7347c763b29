"""The dashboard's users, sessions and forms, in process (the browser tests are in tests/e2e)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ledger.app import create_app
from ledger.pages import data
from ledger.passwords import hash_password, verify_password
from ledger.store import LedgerStore

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a long enough secret"


def test_a_password_hash_names_scrypt_and_is_salted() -> None:
    one, two = hash_password(PASSWORD), hash_password(PASSWORD)
    assert one.startswith("scrypt$16384$8$1$") and one != two
    assert verify_password(PASSWORD, one) and not verify_password("wrong password", one)
    assert not verify_password(PASSWORD, None)
    assert not verify_password(PASSWORD, "md5$abc")
    with pytest.raises(ValueError, match="at least 8"):
        hash_password("short")


def test_login_gives_a_session_and_a_new_password_ends_it(store: LedgerStore) -> None:
    store.add_user("ana", PASSWORD)
    assert store.login("ana", "wrong password", 60) is None
    assert store.login("bob", PASSWORD, 60) is None
    token = store.login("ana", PASSWORD, 60)
    assert token is not None and store.session_user(token) == "ana"
    expired = store.login("ana", PASSWORD, -1)
    assert expired is not None and store.session_user(expired) is None
    store.add_user("ana", "another long secret")
    assert store.session_user(token) is None  # the password changed: log in again
    fresh = store.login("ana", "another long secret", 60)
    assert fresh is not None
    store.session_user(fresh, end=True)
    assert store.session_user(fresh) is None


def test_user_add_reads_the_password_from_stdin_never_argv(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    cmd = [sys.executable, "-m", "agent.cli", "ledger", "user", "add", "ana", "--db", str(db)]
    done = subprocess.run(cmd, cwd=ROOT, input=PASSWORD + "\n", capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    short = subprocess.run(cmd, cwd=ROOT, input="short\n", capture_output=True, text=True)
    assert short.returncode == 1 and "at least 8 characters" in short.stderr
    assert "Traceback" not in short.stderr
    with LedgerStore(db) as store:
        assert store.login("ana", PASSWORD, 60) is not None


@pytest.fixture
async def browser_like(store: LedgerStore) -> AsyncIterator[httpx.AsyncClient]:
    store.add_user("ana", PASSWORD)
    transport = httpx.ASGITransport(app=create_app(store))
    async with httpx.AsyncClient(transport=transport, base_url="https://ledger") as client:
        yield client


async def login(client: httpx.AsyncClient, password: str = PASSWORD) -> httpx.Response:
    form = (await client.get("/login")).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf is not None
    return await client.post(
        "/login", data={"csrf": csrf[1], "name": "ana", "password": password, "next": "/"}
    )


async def test_pages_need_a_session(browser_like: httpx.AsyncClient) -> None:
    for path in ("/", "/item/x", "/dash/feed"):
        r = await browser_like.get(path)
        assert r.status_code in (303, 401), path
    r = await browser_like.get("/?q=a")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2F%3Fq%3Da"


async def test_login_sets_a_strict_cookie_and_refuses_a_forged_form(
    browser_like: httpx.AsyncClient,
) -> None:
    wrong = await login(browser_like, "wrong password")
    assert wrong.status_code == 200 and "Wrong name or password" in wrong.text
    assert "edgetally_session" not in wrong.cookies
    ok = await login(browser_like)
    assert ok.status_code == 303 and ok.headers["location"] == "/"
    cookie = next(v for k, v in ok.headers.multi_items() if v.startswith("edgetally_session="))
    for flag in ("HttpOnly", "Secure", "SameSite=strict", "Path=/"):
        assert flag.lower() in cookie.lower()
    page = await browser_like.get("/")
    assert page.status_code == 200 and "Stock on hand" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    # log out without the form's CSRF token: refused, still logged in
    forged = await browser_like.post("/logout", data={"csrf": "guess"})
    assert forged.status_code == 403
    assert (await browser_like.get("/")).status_code == 200
    # a login form whose CSRF does not match the cookie is refused
    browser_like.cookies.set("edgetally_csrf", "one", domain="ledger")
    r = await browser_like.post("/login", data={"csrf": "two", "name": "ana", "password": PASSWORD})
    assert r.status_code == 403


async def test_login_never_redirects_off_site(browser_like: httpx.AsyncClient) -> None:
    form = (await browser_like.get("/login?next=//evil.example/")).text
    assert 'name="next" value="/"' in form


def test_stock_over_time_follows_the_journal_and_counts_through_their_adjust() -> None:
    entries = [
        {"kind": "receive", "qty": 5, "to": "A", "item": {"gtin": "1"}, "observed_at": "t1"},
        {"kind": "ship", "qty": 2, "from": "A", "item": {"gtin": "1"}, "observed_at": "t2"},
        {"kind": "count", "qty": 1, "to": "A", "item": {"gtin": "1"}, "observed_at": "t3"},
        {"kind": "adjust", "qty": 2, "from": "A", "item": {"gtin": "1"}, "observed_at": "t3"},
        {"kind": "transfer", "qty": 1, "from": "A", "to": "B", "item": {"gtin": "1"}},
        {"kind": "receive", "qty": 9, "to": "A", "item": {"gtin": "2"}, "observed_at": "t4"},
    ]
    history, series = data.item_history(entries, "1")
    assert len(history) == 5
    assert [q for _, q in series] == [5, 3, 3, 1, 1]
