"""The ledger's EPCIS 2.0 routes in its OpenAPI document (merged in ``ledger.openapi``).

The event and document schemas are GS1's (EPCIS-JSON-Schema.json, named by
URL here rather than copied); what is described is what this ledger adds or
limits: the capture job's extra fields, which events become movements, the
query parameters it answers.
"""

from __future__ import annotations

from typing import Any

GS1_SCHEMA = "https://gs1.github.io/EPCIS/EPCIS-JSON-Schema.json"  # the schema's own $id

_PROBLEM = {
    "type": "object",
    "description": "RFC 7807; `error` repeats `detail` for clients of the /v1 protocol.",
    "required": ["type", "title"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string", "description": "Per-event errors: the event's eventID"},
        "edgetally:index": {"type": "integer", "description": "The event's place in eventList"},
        "error": {"type": "string"},
    },
}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/EpcisProblem"}}
        },
    }


SCHEMAS: dict[str, Any] = {
    "EpcisProblem": _PROBLEM,
    "CaptureJob": {
        "type": "object",
        "description": (
            "As in the EPCIS 2.0 REST bindings. Capture runs before the 202 is sent, so "
            "`running` is always false. `errors` has one entry per event not captured."
        ),
        "required": ["captureID", "running", "success", "captureErrorBehaviour", "errors"],
        "properties": {
            "captureID": {"type": "string"},
            "createdAt": {"type": "string", "format": "date-time"},
            "finishedAt": {"type": "string", "format": "date-time"},
            "running": {"const": False},
            "success": {"type": "boolean"},
            "captureErrorBehaviour": {"enum": ["rollback", "proceed"]},
            "errors": {"type": "array", "items": {"$ref": "#/components/schemas/EpcisProblem"}},
            "edgetally:captured": {
                "type": "integer",
                "description": "Events booked as movements now",
            },
            "edgetally:duplicates": {
                "type": "array",
                "items": {"type": "string"},
                "description": "eventIDs held already (same content): captured before, not booked again",
            },
        },
    },
}

_LIST = {"type": "array", "items": {"type": "string"}}


def _param(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "description": description,
        "schema": schema or _LIST,
        "style": "form",
        "explode": False,
    }


PATHS: dict[str, Any] = {
    "/epcis/capture": {
        "post": {
            "summary": "Capture an EPCISDocument (EPCIS 2.0 REST bindings)",
            "description": (
                "Each ObjectEvent becomes one movement of the token's agent, in the same journal "
                "and transaction as /v1. Idempotent on eventID: the same eventID with the same "
                "content is a duplicate; with other content, that event's error. An event the "
                "ledger cannot read as one movement (not an ObjectEvent, no eventID, a bizStep "
                "it does not map, no whole quantity, several items) is that event's error with "
                f"the reason. Document schema: {GS1_SCHEMA}"
            ),
            "parameters": [
                {
                    "name": "GS1-Capture-Error-Behaviour",
                    "in": "header",
                    "schema": {"enum": ["rollback", "proceed"], "default": "rollback"},
                    "description": "rollback: one error and nothing is kept; proceed: keep the rest",
                }
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/ld+json": {"schema": {"$ref": GS1_SCHEMA}},
                    "application/json": {"schema": {"$ref": GS1_SCHEMA}},
                },
            },
            "responses": {
                "202": {
                    "description": "Captured; `Location: /epcis/capture/{captureID}` is the job",
                    "headers": {"Location": {"schema": {"type": "string"}}},
                },
                "400": _problem("Not JSON, not an EPCISDocument, no eventList, or a bad header"),
                "401": _problem("Missing or unknown token"),
                "413": _problem("More events or bytes than the capture limits"),
                "415": _problem("Content-Type is not application/(ld+)json"),
            },
        },
        "options": {
            "summary": "Capture limits (GS1-EPCIS-Capture-Limit, GS1-EPCIS-Capture-File-Size-Limit)",
            "security": [],
            "responses": {"204": {"description": "The limits, in headers"}},
        },
    },
    "/epcis/capture/{captureID}": {
        "get": {
            "summary": "A capture job of this token's agent",
            "parameters": [
                {"name": "captureID", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {
                "200": {
                    "description": "The job",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/CaptureJob"}}
                    },
                },
                "404": _problem("No such job for this agent"),
            },
        },
    },
    "/epcis/events": {
        "get": {
            "summary": "Captured events (a SimpleEventQuery subset), oldest capture first",
            "parameters": [
                _param("eventType", "ObjectEvent (the only type captured)"),
                _param("EQ_bizStep", "Any of these bizSteps (bare CBV terms)"),
                _param(
                    "GE_eventTime",
                    "eventTime at or after",
                    {"type": "string", "format": "date-time"},
                ),
                _param(
                    "LT_eventTime", "eventTime before", {"type": "string", "format": "date-time"}
                ),
                _param(
                    "MATCH_epc",
                    "An EPC in epcList; `urn:epc:idpat:sgtin:CP.IR.*` matches a product",
                ),
                _param(
                    "MATCH_epcClass", "An epcClass in quantityList; an idpat matches its LGTINs"
                ),
                _param("perPage", "Events per page (1..1000, default 100)", {"type": "integer"}),
                _param(
                    "nextPageToken", 'From the `Link: <...>; rel="next"` header', {"type": "string"}
                ),
            ],
            "responses": {
                "200": {
                    "description": "An EPCISQueryDocument; `Link` with rel=next when there is more",
                    "content": {"application/ld+json": {"schema": {"$ref": GS1_SCHEMA}}},
                },
                "400": _problem("A parameter this ledger does not answer, or a bad value"),
                "401": _problem("Missing or unknown token"),
            },
        },
    },
}
