"""A captured EPCIS ObjectEvent as a ledger movement, with no I/O.

The ledger keeps movements, so an event it cannot read as one movement is a
per-event error with the reason, never a guess: one item per event (one EPC,
several SGTINs of one GTIN, or one quantityList entry), a whole quantity, and
a bizStep it knows. EdgeTally's own events carry ``edgetally:movement`` (the
kind and the location codes EPCIS has no field for) and come back exactly as
the agent made them; other readers' events are read by their standard fields:

    receiving, arriving, accepting, unloading   -> receive into bizLocation (else readPoint)
    shipping, departing, loading               -> ship out of readPoint (else bizLocation)
    cycle_counting, stock_taking               -> count at bizLocation (else readPoint)
    action DELETE (destroying, decommissioning) -> adjust out of readPoint (else bizLocation)

The SGLN URI is then the location code. The movement id is the UUID of an
``urn:uuid:`` eventID (EdgeTally's events: the agent's movement id, so the
same movement sent by the http-ledger sink and the epcis sink is booked once),
else a UUID5 of the eventID.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote

from agent.epcis import EXTENSION, EpcError, item_from_class, item_from_epc
from agent.epcis.events import EDGETALLY_NS
from agent.model import MOVEMENT_KINDS, Movement

# Fixed for ever: the movement id of an eventID that is not a urn:uuid.
EVENT_NS = uuid.UUID("2b0f3c55-3c0e-5b8e-9d8e-8a6f2f1e0c41")
_UUID_URN = re.compile(
    r"^urn:uuid:([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)
RECEIVE_STEPS = ("receiving", "arriving", "accepting", "unloading")
SHIP_STEPS = ("shipping", "departing", "loading")
COUNT_STEPS = ("cycle_counting", "stock_taking")
_REF = "urn:edgetally:ref:"


class EventRefused(ValueError):
    """An event the ledger will not capture; the message is the per-event error."""


@dataclass(frozen=True, slots=True)
class Converted:
    event_id: str
    movement: Movement
    content_sha256: str  # of the event as sent (less recordTime): same id, other content?
    event_time: str  # UTC, microseconds: sorts as text on both backends
    biz_step: str | None
    epcs: tuple[str, ...]
    classes: tuple[str, ...]


def movement_id(event_id: str) -> str:
    found = _UUID_URN.match(event_id)
    if found:
        return found.group(1).lower()
    return str(uuid.uuid5(EVENT_NS, event_id))


def content_sha256(event: Mapping[str, Any]) -> str:
    body = {k: v for k, v in event.items() if k != "recordTime"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def utc_time(value: object, what: str) -> str:
    """An EPCIS date-time as UTC text with microseconds (``...T10:00:00.000000Z``)."""
    if not isinstance(value, str):
        raise EventRefused(f"{what}: required, expected an ISO 8601 date-time")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise EventRefused(f"{what}: {value[:60]!r} is not an ISO 8601 date-time") from exc
    if when.tzinfo is None:
        raise EventRefused(f"{what}: {value[:60]!r} has no time zone (Z or ±hh:mm)")
    return when.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def convert(event: object, agent: str) -> Converted:
    """The movement this event means for ``agent``; EventRefused says why not."""
    if not isinstance(event, Mapping):
        raise EventRefused("event: expected a JSON object")
    if event.get("type") != "ObjectEvent":
        raise EventRefused(
            f"type {event.get('type')!r}: the ledger captures ObjectEvents only "
            "(stock moves; aggregations and transformations are not movements)"
        )
    eid = event.get("eventID")
    if not isinstance(eid, str) or not eid or len(eid) > 512:
        raise EventRefused(
            "eventID: required here; the ledger is idempotent on it (a resend is a duplicate)"
        )
    when = utc_time(event.get("eventTime"), "eventTime")
    ext = _extension(event)
    kind = _kind(event, ext)
    item, qty, uom, epcs, classes = _what(event, kind, ext)
    read_point = _place(event, "readPoint")
    biz_location = _place(event, "bizLocation")
    here = biz_location or read_point
    there = read_point or biz_location
    src, dst = ext.get("from"), ext.get("to")
    if "kind" not in ext:
        if kind in ("receive", "count"):
            dst = here
        else:  # ship, adjust out
            src = there
    raw = {
        "id": movement_id(eid),
        "agent": agent,
        "seq": ext.get("seq") if ext.get("agent") == agent else None,
        "kind": kind,
        "item": item,
        "qty": qty,
        "uom": ext.get("uom") or uom,
        "from": src,
        "to": dst,
        "reason": ext.get("reason") if "kind" in ext else _disposed(event, kind),
        "ref": _refs(event),
        "station": ext.get("station") or read_point or "epcis",
        "device": ext.get("device") or "epcis",
        "operator": ext.get("operator"),
        "observed_at": when,
        "clock": {"synced": True, "boot_id": "epcis", "mono_ns": 0},
        **{k: ext[k] for k in ("unit_cost", "currency") if ext.get(k) is not None},
        "evidence": {
            "epcis": {
                k: v
                for k, v in (
                    ("eventID", eid),
                    ("bizStep", event.get("bizStep")),
                    ("disposition", event.get("disposition")),
                    ("readPoint", read_point),
                    ("bizLocation", biz_location),
                )
                if v is not None
            },
            **({"epcs": list(epcs)} if len(epcs) > 1 else {}),
            **({"counted": ext.get("counted")} if kind == "count_close" else {}),
        },
    }
    try:
        movement = Movement.from_dict(raw)
    except ValueError as exc:
        raise EventRefused(f"as a movement: {exc}") from exc
    step = event.get("bizStep")
    return Converted(
        eid,
        movement,
        content_sha256(event),
        when,
        step if isinstance(step, str) else None,
        epcs,
        classes,
    )


def _disposed(event: Mapping[str, Any], kind: str) -> str | None:
    """Another reader's DELETE: its disposition (destroyed, disposed...) is the reason."""
    disposition = event.get("disposition")
    return disposition if kind == "adjust" and isinstance(disposition, str) else None


def _extension(event: Mapping[str, Any]) -> dict[str, Any]:
    ext = event.get(EXTENSION, event.get(EDGETALLY_NS + "movement"))
    if ext is None:
        return {}
    if not isinstance(ext, dict):
        raise EventRefused(f"{EXTENSION}: expected an object")
    return ext


def _kind(event: Mapping[str, Any], ext: Mapping[str, Any]) -> str:
    if "kind" in ext:
        if ext["kind"] not in MOVEMENT_KINDS:
            raise EventRefused(f"{EXTENSION}.kind: expected one of {', '.join(MOVEMENT_KINDS)}")
        return str(ext["kind"])
    action, step = event.get("action"), event.get("bizStep")
    if action not in ("ADD", "OBSERVE", "DELETE"):
        raise EventRefused(f"action {action!r}: expected ADD, OBSERVE or DELETE")
    if action == "DELETE":
        return "adjust"
    if step in RECEIVE_STEPS:
        return "receive"
    if step in SHIP_STEPS:
        return "ship"
    if step in COUNT_STEPS:
        return "count"
    known = ", ".join((*RECEIVE_STEPS, *SHIP_STEPS, *COUNT_STEPS))
    raise EventRefused(
        f"bizStep {step!r}: no movement for it (the ledger reads {known}, or action DELETE; "
        f"other steps need {EXTENSION} with the kind and locations)"
    )


def _what(
    event: Mapping[str, Any], kind: str, ext: Mapping[str, Any]
) -> tuple[dict[str, str], int, str, tuple[str, ...], tuple[str, ...]]:
    """(item, qty, uom, instance EPCs, class EPCs) of the one item the event moves."""
    epcs = event.get("epcList") or []
    quantities = event.get("quantityList") or []
    if not isinstance(epcs, list) or not isinstance(quantities, list):
        raise EventRefused("epcList and quantityList: expected lists")
    if kind == "count_close":  # about a place: the keys counted are in the extension
        counted = ext.get("counted")
        return {}, len(counted) if isinstance(counted, list) else 0, "EA", (), ()
    if epcs and quantities:
        raise EventRefused("epcList and quantityList both given: one item per event")
    try:
        if epcs:
            if not all(isinstance(e, str) for e in epcs):
                raise EventRefused("epcList: expected EPC URIs")
            items = [item_from_epc(e) for e in epcs]
            if len(items) == 1:
                return items[0], 1, "EA", tuple(epcs), ()
            gtins = {i.get("gtin") for i in items}
            if len(gtins) != 1 or None in gtins or len(set(epcs)) != len(epcs):
                raise EventRefused(
                    f"epcList: {len(epcs)} EPCs that are not distinct units of one GTIN "
                    "(the ledger keeps one item per event)"
                )
            return {"gtin": str(gtins.pop())}, len(epcs), "EA", tuple(epcs), ()
        if len(quantities) != 1 or not isinstance(quantities[0], Mapping):
            raise EventRefused(
                f"quantityList: {len(quantities)} entries and no epcList; "
                "the ledger keeps one item (with its quantity) per event"
            )
        entry = quantities[0]
        epc_class = entry.get("epcClass")
        if not isinstance(epc_class, str):
            raise EventRefused("quantityList[0].epcClass: required")
        item = item_from_class(epc_class)
    except EpcError as exc:
        raise EventRefused(str(exc)) from exc
    qty = _whole(entry.get("quantity"))
    uom = entry.get("uom") or "EA"
    if not isinstance(uom, str):
        raise EventRefused("quantityList[0].uom: expected a unit code")
    return item, qty, uom, (), (epc_class,)


def _whole(value: object) -> int:
    """A whole quantity: the ledger counts; 2.5 of something is not a stock move it can keep."""
    if value is None:
        raise EventRefused("quantityList[0].quantity: required (the ledger counts what moved)")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EventRefused(f"quantityList[0].quantity: expected a number, got {value!r}")
    try:
        exact = Decimal(str(value))
    except InvalidOperation as exc:
        raise EventRefused(f"quantityList[0].quantity: {value!r} is not a number") from exc
    if exact != exact.to_integral_value() or exact < 0:
        raise EventRefused(f"quantityList[0].quantity: expected a whole number >= 0, got {value}")
    return int(exact)


def _place(event: Mapping[str, Any], key: str) -> str | None:
    value = event.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping) or not isinstance(value.get("id"), str) or not value["id"]:
        raise EventRefused(f'{key}: expected {{"id": <URI>}}')
    return str(value["id"])


def _refs(event: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    transactions = event.get("bizTransactionList") or []
    if not isinstance(transactions, list):
        raise EventRefused("bizTransactionList: expected a list")
    for n, t in enumerate(transactions):
        if not isinstance(t, Mapping) or not isinstance(t.get("bizTransaction"), str):
            raise EventRefused(f'bizTransactionList[{n}]: expected {{"bizTransaction": <URI>}}')
        uri = t["bizTransaction"]
        if uri.startswith(_REF) and ":" in uri[len(_REF) :]:
            key, _, value = uri[len(_REF) :].partition(":")
            out[key] = unquote(value)
        else:
            kind = t.get("type")
            out[kind if isinstance(kind, str) else f"bizTransaction{n}"] = uri
    return out
