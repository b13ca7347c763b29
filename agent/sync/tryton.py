"""The ``tryton`` sink: book movements as Tryton stock moves over JSON-RPC, exactly once.

Tryton has no idempotency key and opens one transaction per RPC call, so a
"search, then create, then do" from here would leave windows between three
transactions. The Tryton module ``edgetally`` (tryton_edgetally/, installed on
the Tryton server) closes them: ``stock.move.edgetally_id`` carries the
movement id under a unique index, and ``model.stock.move.edgetally_book`` looks
up, creates and does a whole batch in one call, so one transaction. A lost
answer means the batch was booked entirely or not at all; the resend is
answered ``duplicate`` for what was booked.

This module maps EdgeTally's movements to Tryton's (kinds to location pairs,
EdgeTally locations to Tryton location codes) and translates JSON-RPC into our
error tree. Hand-written over httpx rather than ``proteus``: proteus is
synchronous and builds its models from the server's view definitions, which
costs a dozen calls per model and gives nothing for one RPC.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from agent.errors import LedgerAuth, LedgerMisconfigured, LedgerRejected, SyncTransient
from agent.outbox import Pending
from agent.sync.http_ledger import Result
from agent.sync.httperrors import transient_httpx_errors

BOOK = "model.stock.move.edgetally_book"
# Tryton's errors about the batch's contents (a UserError from a constraint):
# the Syncer bisects to the movement that causes it. Anything else the server
# raises (a database lock, a concurrent update) is worth retrying.
_CONTENT_ERRORS = {"UserError", "UserWarning"}


@dataclass(frozen=True)
class TrytonPlaces:
    """Where movements come from and go to in Tryton, by location code."""

    locations: Mapping[str, str]  # EdgeTally location -> Tryton storage location code
    supplier: str = "SUP"
    customer: str = "CUS"
    lost_found: str = "LOST"


def to_tryton(movement: Mapping[str, Any], places: TrytonPlaces) -> dict[str, Any] | str:
    """The movement as ``edgetally_book`` takes it, or why it cannot be booked."""
    item = movement.get("item") or {}
    code = item.get("gtin") or item.get("sku")
    if not code:
        return "the item has no gtin or sku: Tryton finds products by code"

    def place(key: str) -> str | None:
        where = movement.get(key)
        return places.locations.get(where) if isinstance(where, str) else None

    def unmapped(key: str) -> str:
        return (
            f"EdgeTally location {movement.get(key)!r} ({key}) is not mapped to a Tryton location"
        )

    kind = movement.get("kind")
    src, dst = movement.get("from"), movement.get("to")
    pair: tuple[str | None, str | None, str, str]  # from, to, and what to blame when missing
    if kind == "receive":
        pair = (places.supplier, place("to"), "", "to")
    elif kind == "ship":
        pair = (place("from"), places.customer, "from", "")
    elif kind == "transfer":
        pair = (place("from"), place("to"), "from", "to")
    elif kind == "return":
        pair = (places.customer, place("to"), "", "to")
    elif kind == "count":
        pair = (places.lost_found, place("to"), "", "to")
    elif kind == "adjust" and src and not dst:
        pair = (place("from"), places.lost_found, "from", "")
    elif kind == "adjust" and dst and not src:
        pair = (places.lost_found, place("to"), "", "to")
    else:
        return f"cannot book a {kind!r} movement from {src!r} to {dst!r} in Tryton"
    if pair[0] is None:
        return unmapped(pair[2])
    if pair[1] is None:
        return unmapped(pair[3])
    ref = movement.get("ref") or {}
    cost = movement.get("unit_cost", ref.get("unit_cost"))
    observed = movement.get("observed_at")
    return {
        "id": movement["id"],
        "kind": "count" if kind == "count" else "move",
        "product": code,
        "lot": item.get("lot"),
        "quantity": movement.get("qty"),
        "from": pair[0],
        "to": pair[1],
        "unit_price": None if cost is None else str(cost),
        "date": observed[:10] if isinstance(observed, str) else None,
    }


class TrytonSink:
    """One session with one Tryton database for the agent's life; closed stays closed."""

    def __init__(
        self,
        url: str,
        database: str,
        login: str,
        password: str,
        places: TrytonPlaces,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/") + f"/{database}/rpc/"
        self._login, self._password = login, password
        self.places = places
        self._client = httpx.AsyncClient(
            headers={"User-Agent": "edgetally"},
            timeout=timeout_s,
            transport=transport,
            follow_redirects=False,
        )
        self._session: str | None = None
        self._context: dict[str, Any] = {}
        self._closed = False

    async def aclose(self) -> None:
        self._closed = True
        await self._client.aclose()

    async def send(self, agent: str, batch: Sequence[Pending], batch_id: str) -> list[Result]:
        if self._closed:
            raise RuntimeError("the tryton sink is closed")
        answers: dict[str, Result] = {}
        wanted: list[dict[str, Any]] = []
        for p in batch:
            mapped = to_tryton(json.loads(p.payload), self.places)
            if isinstance(mapped, str):
                answers[p.id] = Result(p.id, "rejected", mapped)
            else:
                wanted.append(mapped)
        if wanted:
            for r in await self._book(wanted):
                answers[r.id] = r
        missing = [p.id for p in batch if p.id not in answers]
        if missing:
            raise SyncTransient(
                f"tryton {self.url} answered for {len(batch) - len(missing)} of {len(batch)} movements"
            )
        return [answers[p.id] for p in batch]

    async def _book(self, movements: list[dict[str, Any]]) -> list[Result]:
        for attempt in (1, 2):
            if self._session is None:
                await self._open_session()
            try:
                raw = await self._call(BOOK, [movements, self._context])
                break
            except _SessionExpired:
                self._session = None  # log in again once; a second refusal is real
                if attempt == 2:
                    raise LedgerAuth(
                        f"tryton {self.url}: user {self._login!r} may not book stock moves "
                        "(give it the Stock group)"
                    ) from None
        try:
            return [Result(str(r["id"]), r["status"], r.get("reason")) for r in raw]
        except (TypeError, KeyError) as exc:
            raise SyncTransient(f"tryton {self.url} answered an unreadable result") from exc

    async def _open_session(self) -> None:
        try:
            user_id, key, *_ = await self._call(
                "common.db.login", [self._login, {"password": self._password}, "en"], auth=False
            )
        except _SessionExpired:
            raise LedgerAuth(
                f"tryton {self.url}: login {self._login!r} refused (check the password file)"
            ) from None
        token = base64.b64encode(f"{self._login}:{user_id}:{key}".encode()).decode("ascii")
        self._session = f"Session {token}"
        prefs = await self._call("model.res.user.get_preferences", [True, {}])
        self._context = {"company": prefs.get("company"), "language": "en"}
        if not self._context["company"]:
            raise LedgerMisconfigured(f"tryton {self.url}: user {self._login!r} has no company")

    async def _call(self, method: str, params: list[Any], auth: bool = True) -> Any:
        headers = {"Authorization": self._session} if auth and self._session else {}
        with transient_httpx_errors(f"tryton {self.url}"):
            response = await self._client.post(
                self.url, json={"id": 1, "method": method, "params": params}, headers=headers
            )
            await response.aread()
        code = response.status_code
        if code in (401, 403):
            raise _SessionExpired
        if code == 429 or code >= 500:
            raise SyncTransient(f"tryton {self.url} answered {code}")
        if code != 200:
            raise LedgerMisconfigured(
                f"tryton {self.url} answered {code} to {method} "
                "(check the URL, the database name and that the edgetally module is activated)"
            )
        try:
            doc = response.json()
        except ValueError as exc:
            raise SyncTransient(f"tryton {self.url} answered 200 with an unreadable body") from exc
        error = doc.get("error") if isinstance(doc, dict) else None
        if error:
            raise _translate(self.url, method, error)
        return doc.get("result")


class _SessionExpired(Exception):
    """401/403: the session is gone (timed out, server restarted) or never was."""


def _translate(url: str, method: str, error: Any) -> Exception:
    name = error[0] if isinstance(error, list) and error else str(error)
    detail = error[1] if isinstance(error, list) and len(error) > 1 else ""
    if isinstance(detail, list):
        detail = detail[0] if detail else ""
    what = f"tryton {url}: {method} failed: {name}{': ' + str(detail) if detail else ''}"
    if name in _CONTENT_ERRORS:
        return LedgerRejected(what[:500])
    if "edgetally_book" in str(detail) or name == "KeyError":
        return LedgerMisconfigured(what[:300] + " (is the edgetally module activated?)")
    return SyncTransient(what[:500])


__all__ = ["TrytonPlaces", "TrytonSink", "to_tryton"]
