"""The valuation's part of the ledger's OpenAPI document (``ledger.openapi``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_LIST = {"type": "array", "items": {"type": "object"}}


def _param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": {"type": "string"}, "description": description}


_FORMAT = _param("format", "csv or json (or send Accept: text/csv)")


def paths(
    ok: Callable[[str, dict[str, Any]], dict[str, Any]], auth: dict[str, Any]
) -> dict[str, Any]:
    return {
        "/v1/entries": {
            "get": {
                "summary": "The journal in money: entries with balanced debit and credit lines",
                "parameters": [
                    _param("movement", "only this movement's entries"),
                    _param("since", "after this entry position"),
                    _param("limit", "at most this many entries (1-1000)"),
                    _FORMAT,
                ],
                "responses": {
                    "200": ok(
                        "Entries, oldest first",
                        {
                            "type": "object",
                            "properties": {"entries": _LIST, "next": {"type": "integer"}},
                        },
                    ),
                    **auth,
                },
            }
        },
        "/v1/reports/{name}": {
            "get": {
                "summary": "A valuation report: stock-value, cogs, identity, turnover, "
                "shrinkage, as-of",
                "parameters": [
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "schema": {
                            "enum": [
                                "stock-value",
                                "cogs",
                                "identity",
                                "turnover",
                                "shrinkage",
                                "as-of",
                            ]
                        },
                    },
                    _param("from", "window start (ISO 8601, posting time)"),
                    _param("to", "window end, excluded"),
                    _param("period", "identity: a month (2026-05) or a day"),
                    _param("at", "as-of: an event time (ISO 8601)"),
                    _param("item", "stock-value, as-of: one item"),
                    _param("location", "stock-value, as-of: one location"),
                    _FORMAT,
                ],
                "responses": {
                    "200": ok("Rows", {"type": "object", "properties": {"rows": _LIST}}),
                    **auth,
                },
            }
        },
        "/v1/alerts": {
            "get": {
                "summary": "Low-stock alerts (open; all=1 with the cleared) and their counts",
                "parameters": [_param("all", "1: the cleared alerts too"), _FORMAT],
                "responses": {
                    "200": ok(
                        "Alerts",
                        {
                            "type": "object",
                            "properties": {"alerts": _LIST, "metrics": {"type": "object"}},
                        },
                    ),
                    **auth,
                },
            }
        },
    }
