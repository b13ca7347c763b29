"""URLs that may carry secrets: shown redacted, joined without breaking the query.

``sync.url`` may hold a password (``http://user:pass@host/``) or a key in its
query (``?api_key=K``) for a proxy in front of the ledger. Every message, log
line, status and config dump shows `redacted` instead; requests go to
`endpoint`, which puts the path where the path goes and keeps the query.
"""

from __future__ import annotations

import httpx

HIDDEN = "***"


def redacted(url: str) -> str:
    """``url`` with its password, user and every query value replaced by ``***``;
    text that does not parse as a URL is not shown at all."""
    try:
        u = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "<a URL that does not parse>"
    if u.userinfo:
        u = u.copy_with(username=HIDDEN, password=HIDDEN if u.password else None)
    if u.query:
        u = u.copy_with(params=[(k, HIDDEN) for k, _ in u.params.multi_items()])
    # httpx percent-encodes the *: show them as typed.
    return str(u).replace("%2A%2A%2A", HIDDEN)


def endpoint(base: str, path: str) -> httpx.URL:
    """``path`` under ``base``'s path, keeping ``base``'s query (not after it)."""
    u = httpx.URL(base)
    return u.copy_with(path=u.path.rstrip("/") + "/" + path.lstrip("/"))
