"""The ledger protocol as an OpenAPI 3.1 document, served at ``/openapi.json``.

Written by hand so it says what the protocol promises (idempotency per
movement id, per-movement results) rather than what a framework can infer.
The Movement schema mirrors the checks in ``agent.model.Movement.from_dict``.
"""

from __future__ import annotations

from typing import Any

from ledger.epcis.openapi import PATHS as EPCIS_PATHS
from ledger.epcis.openapi import SCHEMAS as EPCIS_SCHEMAS
from ledger.valuation.openapi import paths as valuation_paths

_TEXT = {"type": "string", "minLength": 1, "maxLength": 512}
_OPT_TEXT = {"type": ["string", "null"], "maxLength": 512}
_SAFE_INT = 2**53 - 1


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_AUTH_ERRORS = {
    "400": _error("Bad query parameters"),
    "401": _error("Missing or unknown token (with `WWW-Authenticate: Bearer`)"),
}

SCHEMAS: dict[str, Any] = {
    "Item": {
        "type": "object",
        "description": "What is known of the item; on-hand is kept by gtin, else sku, sscc, epc.",
        "properties": {
            k: _OPT_TEXT for k in ("gtin", "sku", "lot", "serial", "expiry", "epc", "sscc")
        },
        "additionalProperties": False,
        "anyOf": [{"required": [k]} for k in ("gtin", "sku", "sscc", "epc")],
    },
    "Clock": {
        "type": "object",
        "required": ["synced", "boot_id", "mono_ns"],
        "properties": {
            "synced": {"type": "boolean"},
            "boot_id": _TEXT,
            "mono_ns": {"type": "integer", "minimum": 0},
        },
        "additionalProperties": False,
    },
    "Movement": {
        "type": "object",
        "description": (
            "One inventory movement. `id` is the idempotency key: the ledger applies each "
            "id at most once. receive/return need `to`, ship needs `from`, transfer both, "
            "count `to` (the counted on-hand there), adjust exactly one of them. A "
            "count_close (item `{}`, `to`, `evidence.counted`: the item keys the session "
            "counted, `qty` how many) says `to` holds nothing else: every other item "
            "there goes to 0 through a count-variance adjust. A count's qty may be 0."
        ),
        "required": [
            "id",
            "agent",
            "kind",
            "item",
            "qty",
            "station",
            "device",
            "observed_at",
            "clock",
        ],
        "properties": {
            "id": {
                "type": "string",
                "format": "uuid",
                "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
            },
            "agent": _TEXT,
            "seq": {"type": ["integer", "null"], "minimum": 1, "maximum": _SAFE_INT},
            "kind": {
                "enum": ["receive", "ship", "transfer", "return", "count", "adjust", "count_close"]
            },
            "item": _ref("Item"),
            "qty": {"type": "integer", "minimum": 0, "maximum": _SAFE_INT},
            "uom": {**_OPT_TEXT, "default": "EA"},
            "from": _OPT_TEXT,
            "to": _OPT_TEXT,
            "reason": _OPT_TEXT,
            "ref": {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
            "station": _TEXT,
            "device": _TEXT,
            "operator": _OPT_TEXT,
            "observed_at": {**_TEXT, "description": "Wall clock, UTC, RFC 3339"},
            "clock": _ref("Clock"),
            "evidence": {"type": ["object", "null"]},
            "unit_cost": {
                "type": "string",
                "pattern": "^[0-9]{1,12}(\\.[0-9]{1,6})?$",
                "description": "What one unit cost (receive, return, adjust): a decimal string",
            },
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        },
        "additionalProperties": False,
    },
    "Batch": {
        "type": "object",
        "required": ["agent", "movements"],
        "properties": {
            "agent": {**_TEXT, "description": "Must be the agent of the bearer token"},
            "movements": {"type": "array", "minItems": 1, "items": _ref("Movement")},
        },
    },
    "Result": {
        "type": "object",
        "required": ["id", "status"],
        "properties": {
            "id": {
                "type": ["string", "null"],
                "description": "The movement's id; null if it had no usable id",
            },
            "status": {
                "enum": ["applied", "duplicate", "rejected", "conflict"],
                "description": (
                    "`duplicate`: this id was applied before with the same content. "
                    "`conflict`: this id was applied before with other content; nothing is "
                    "overwritten and the ledger raises an alarm (an agent treats it as rejected)."
                ),
            },
            "reason": {"type": "string", "description": "Why, when rejected or a conflict"},
        },
    },
    "JournalEntry": {
        "description": (
            "A stored movement plus its journal position and source: `ledger` for the "
            "adjust the ledger posts for a count's variance (reason `count-variance`)."
        ),
        "allOf": [
            _ref("Movement"),
            {
                "type": "object",
                "required": ["pos", "source"],
                "properties": {"pos": {"type": "integer"}, "source": {"enum": ["agent", "ledger"]}},
            },
        ],
    },
    "StockRow": {
        "type": "object",
        "required": ["item", "location", "qty"],
        "properties": {
            "item": {"type": "string"},
            "location": {"type": "string"},
            "qty": {"type": "integer", "description": "May be negative"},
        },
    },
    "Agent": {
        "type": "object",
        "description": "One agent as the ledger sees it (the fleet view).",
        "required": ["agent", "last_contact", "highest_seq", "missing", "gaps", "silent"],
        "properties": {
            "agent": {"type": "string"},
            "last_contact": {"type": ["string", "null"], "description": "Last batch received"},
            "highest_seq": {"type": ["integer", "null"]},
            "missing": {
                "type": "integer",
                "description": "Seq numbers below the highest never journaled",
            },
            "gaps": {
                "type": "array",
                "description": "The first 100 missing ranges, [first, last]",
                "items": {
                    "type": "array",
                    "items": {"type": "integer"},
                    "minItems": 2,
                    "maxItems": 2,
                },
            },
            "movements_last_hour": {"type": "integer"},
            "last_error": {"type": ["string", "null"], "description": "Last refusal or conflict"},
            "last_error_at": {"type": ["string", "null"]},
            "active_tokens": {"type": "integer"},
            "seq_regressions": {
                "type": "integer",
                "description": "Movements applied with a seq at or below one seen before",
            },
            "last_regression": {"type": ["string", "null"]},
            "locations": {
                "type": ["array", "null"],
                "items": {"type": "string"},
                "description": "Where it may move stock; null: anywhere",
            },
            "silent": {
                "type": "boolean",
                "description": "No contact for longer than silent_after_s",
            },
        },
    },
    "Alarm": {
        "type": "object",
        "required": ["at", "agent", "kind", "detail"],
        "properties": {
            "at": {"type": "string"},
            "agent": {"type": "string"},
            "kind": {"enum": ["conflict", "silent", "foreign_id"]},
            "detail": {"type": "string"},
        },
    },
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "EdgeTally reference ledger",
        "version": "1",
        "description": "Perpetual inventory: a journal of movements and on-hand by location.",
        "license": {"name": "GPL-3.0-or-later", "identifier": "GPL-3.0-or-later"},
    },
    "components": {
        "schemas": {**SCHEMAS, **EPCIS_SCHEMAS},
        "securitySchemes": {"agentToken": {"type": "http", "scheme": "bearer"}},
    },
    "security": [{"agentToken": []}],
    "paths": {
        "/v1/movements": {
            "post": {
                "summary": "Deliver a batch of movements",
                "description": (
                    "One transaction per batch; one result per movement, in order. A rejected "
                    "movement does not affect the others."
                ),
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "Accepted; idempotency is per movement id.",
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("Batch")}},
                },
                "responses": {
                    "200": _ok(
                        "Per-movement results",
                        {
                            "type": "object",
                            "required": ["results"],
                            "properties": {"results": {"type": "array", "items": _ref("Result")}},
                        },
                    ),
                    "400": _error("Not JSON, not a batch, or too many movements"),
                    "401": _AUTH_ERRORS["401"],
                    "403": _error("`agent` is not the agent of the token"),
                    "413": _error("Body too large: send a smaller batch"),
                    "415": _error("Content-Type is not application/json"),
                    "503": _error("Storage busy or the database down: retry (`Retry-After`)"),
                },
            },
            "get": {
                "summary": "Read the journal, oldest first",
                "parameters": [
                    {"name": "agent", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "since",
                        "in": "query",
                        "description": "Entries after this pos",
                        "schema": {"type": "integer", "minimum": 0, "default": 0},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 1000,
                            "default": 100,
                        },
                    },
                ],
                "responses": {
                    "200": _ok(
                        "A page of the journal; pass `next` as `since` for the next",
                        {
                            "type": "object",
                            "required": ["movements", "next"],
                            "properties": {
                                "movements": {"type": "array", "items": _ref("JournalEntry")},
                                "next": {"type": "integer"},
                            },
                        },
                    ),
                    **_AUTH_ERRORS,
                    "403": _error("An agent token asking for another agent's journal"),
                },
            },
        },
        "/v1/stock": {
            "get": {
                "summary": "On-hand by item and location",
                "parameters": [
                    {"name": "item", "in": "query", "schema": {"type": "string"}},
                    {"name": "location", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": _ok(
                        "On-hand rows, sorted by item then location",
                        {
                            "type": "object",
                            "required": ["stock"],
                            "properties": {"stock": {"type": "array", "items": _ref("StockRow")}},
                        },
                    ),
                    **_AUTH_ERRORS,
                    "403": _error(
                        "An agent token: this needs a reader token or the dashboard login"
                    ),
                },
            },
        },
        "/v1/whoami": {
            "get": {
                "summary": "The agent this token belongs to (a pre-flight check: doctor)",
                "responses": {
                    "200": _ok(
                        "The token's agent",
                        {
                            "type": "object",
                            "required": ["agent"],
                            "properties": {"agent": _TEXT},
                        },
                    ),
                    "401": _AUTH_ERRORS["401"],
                },
            },
        },
        "/v1/agents": {
            "get": {
                "summary": "The fleet: every agent, its last contact, seq gaps and last error",
                "responses": {
                    "200": _ok(
                        "Agents by id",
                        {
                            "type": "object",
                            "required": ["silent_after_s", "agents"],
                            "properties": {
                                "silent_after_s": {"type": "number"},
                                "agents": {"type": "array", "items": _ref("Agent")},
                            },
                        },
                    ),
                    **_AUTH_ERRORS,
                    "403": _error(
                        "An agent token: this needs a reader token or the dashboard login"
                    ),
                },
            },
        },
        "/v1/alarms": {
            "get": {
                "summary": "Ledger alarms (conflicting duplicates, silent agents), newest first",
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 1000,
                            "default": 100,
                        },
                    }
                ],
                "responses": {
                    "200": _ok(
                        "Alarms",
                        {
                            "type": "object",
                            "required": ["alarms"],
                            "properties": {"alarms": {"type": "array", "items": _ref("Alarm")}},
                        },
                    ),
                    **_AUTH_ERRORS,
                    "403": _error(
                        "An agent token: this needs a reader token or the dashboard login"
                    ),
                },
            },
        },
        **valuation_paths(_ok, _AUTH_ERRORS),
        **EPCIS_PATHS,
        "/healthz": {
            "get": {
                "summary": "Liveness",
                "security": [],
                "responses": {
                    "200": _ok(
                        "Alive", {"type": "object", "properties": {"status": {"const": "ok"}}}
                    ),
                    "503": _error("The last batch could not be stored: writes fail"),
                },
            },
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {"200": _ok("OpenAPI 3.1", {"type": "object"})},
            },
        },
    },
}
