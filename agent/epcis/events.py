"""A Movement as a GS1 EPCIS 2.0 ObjectEvent (JSON-LD), with no I/O.

What maps to what (README "EPCIS 2.0" has the same table):

    kind          action   bizStep          disposition
    receive       ADD      receiving        in_progress
    return        ADD      receiving        restock: sellable_accessible, damaged: damaged,
                                            quarantine: non_sellable_other, else returned
    ship          OBSERVE  shipping         in_transit (no bizLocation: the goods left it)
    transfer      OBSERVE  storing          sellable_accessible; transporting (in_transit)
                                            when RFID (portal/zone) evidence moved it
    count         OBSERVE  cycle_counting   (none)
    count_close   OBSERVE  cycle_counting   (none; an empty epcList: "this is all")
    adjust out    DELETE   destroying       destroyed (no bizLocation)
    adjust in     ADD      stocking         sellable_accessible (found stock)

Serialised units go in ``epcList`` (SGTIN from GTIN + serial, SSCC, or the
raw EPC as read); counted goods in ``quantityList`` with a class-level EPC
(LGTIN from GTIN + lot, else the product pattern ``urn:epc:idpat:sgtin:CP.IR.*``,
else the private SKU class). A portal's class-level pass that kept every EPC
(``evidence.epcs``) lists them in ``epcList``.

EPCIS has no field for EdgeTally's location codes, its movement kind or the
return's reason, so each event carries them in one extension,
``edgetally:movement``, under the ``edgetally`` JSON-LD prefix: the reference
ledger rebuilds the exact movement from it; other repositories keep it as an
extension. ``eventID`` is ``urn:uuid:<movement id>``: the same movement is the
same event however often it is sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent.epcis.identifiers import (
    DEFAULT_GCP_LENGTH,
    EpcError,
    gtin_class_uri,
    lgtin_uri,
    sgtin_uri,
    sku_class_uri,
    sscc_uri,
)

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
EDGETALLY_NS = "https://ns.edgetally.org/epcis/"
CONTEXT: list[Any] = [EPCIS_CONTEXT, {"edgetally": EDGETALLY_NS}]
EXTENSION = "edgetally:movement"

RETURN_DISPOSITIONS = {
    "restock": "sellable_accessible",
    "damaged": "damaged",
    "quarantine": "non_sellable_other",
}
# The PO/ASN/order references a movement may carry, as CBV business transaction types.
BIZ_TRANSACTION_TYPES = {
    "po": "po",
    "asn": "desadv",
    "order": "po",
    "invoice": "inv",
    "rma": "rma",
    "bol": "bol",
}


@dataclass(frozen=True, slots=True)
class EpcisPlaces:
    """Where events happen: each station's SGLN (read point and business location).

    A station not in ``stations`` takes ``default_read_point`` /
    ``default_biz_location``; with neither, the event has no readPoint /
    bizLocation (both are optional in EPCIS). ``timezone`` names the site's
    zone for ``eventTimeZoneOffset`` (UTC by default).
    """

    stations: Mapping[str, str] = field(default_factory=dict)
    default_read_point: str | None = None
    default_biz_location: str | None = None
    timezone: str = "UTC"
    company_prefix_length: int = DEFAULT_GCP_LENGTH

    def read_point(self, station: str) -> str | None:
        return self.stations.get(station) or self.default_read_point

    def biz_location(self, station: str) -> str | None:
        return self.stations.get(station) or self.default_biz_location or self.default_read_point


class MappingError(ValueError):
    """A movement that cannot be written as an EPCIS event; the message says why."""


def event_id(movement_id: str) -> str:
    return f"urn:uuid:{movement_id}"


def to_event(movement: Mapping[str, Any], places: EpcisPlaces) -> dict[str, Any]:
    """The movement (its JSON form, as the outbox keeps it) as an ObjectEvent.

    MappingError when it cannot be one (an item with no key EPCIS can carry, a
    time that is not a time): the sink rejects that movement with the reason.
    """
    kind = movement.get("kind")
    station = str(movement.get("station") or "")
    when, offset = _event_time(movement.get("observed_at"), places.timezone)
    action, biz_step, disposition, at_place = _classify(movement)
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventID": event_id(str(movement["id"])),
        "eventTime": when,
        "eventTimeZoneOffset": offset,
        "action": action,
        "bizStep": biz_step,
    }
    if disposition is not None:
        event["disposition"] = disposition
    _what(event, movement, places.company_prefix_length)
    if (read_point := places.read_point(station)) is not None:
        event["readPoint"] = {"id": read_point}
    if at_place and (biz_location := places.biz_location(station)) is not None:
        event["bizLocation"] = {"id": biz_location}
    transactions = _transactions(movement.get("ref") or {})
    if transactions:
        event["bizTransactionList"] = transactions
    event[EXTENSION] = {
        k: v
        for k, v in (
            ("kind", kind),
            ("from", movement.get("from")),
            ("to", movement.get("to")),
            ("reason", movement.get("reason")),
            ("uom", movement.get("uom")),
            ("station", station or None),
            ("device", movement.get("device")),
            ("operator", movement.get("operator")),
            ("agent", movement.get("agent")),
            ("seq", movement.get("seq")),
            # what a receipt cost (EPCIS has no field for it): the ledger values it
            ("unit_cost", movement.get("unit_cost")),
            ("currency", movement.get("currency")),
            # a count_close's evidence: the item keys its session counted
            (
                "counted",
                (movement.get("evidence") or {}).get("counted") if kind == "count_close" else None,
            ),
        )
        if v is not None
    }
    return event


def document(events: Sequence[Mapping[str, Any]], created: datetime) -> dict[str, Any]:
    """The EPCISDocument that carries ``events`` to ``POST /capture``."""
    return {
        "@context": CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": _iso(created),
        "epcisBody": {"eventList": list(events)},
    }


def _classify(m: Mapping[str, Any]) -> tuple[str, str, str | None, bool]:
    """(action, bizStep, disposition, whether the goods are at the bizLocation after)."""
    kind = m.get("kind")
    if kind == "receive":
        return "ADD", "receiving", "in_progress", True
    if kind == "return":
        return "ADD", "receiving", RETURN_DISPOSITIONS.get(str(m.get("reason")), "returned"), True
    if kind == "ship":
        return "OBSERVE", "shipping", "in_transit", False
    if kind == "transfer":
        evidence = m.get("evidence") or {}
        if "antennas" in evidence or "direction" in evidence:
            return "OBSERVE", "transporting", "in_transit", True
        return "OBSERVE", "storing", "sellable_accessible", True
    if kind in ("count", "count_close"):
        return "OBSERVE", "cycle_counting", None, True
    if kind == "adjust":
        if m.get("from") and not m.get("to"):
            return "DELETE", "destroying", "destroyed", False
        return "ADD", "stocking", "sellable_accessible", True
    raise MappingError(f"movement.kind {kind!r}: no EPCIS event for this kind")


def _what(event: dict[str, Any], m: Mapping[str, Any], gcp: int) -> None:
    """epcList for one serialised unit (or a portal pass that kept its EPCs), else quantityList."""
    item = m.get("item") or {}
    qty = m.get("qty")
    if m.get("kind") == "count_close":
        event["epcList"] = []
        return
    if not isinstance(qty, int) or isinstance(qty, bool) or qty < 0:
        raise MappingError(f"movement.qty: expected a whole number, got {qty!r}")
    gtin, lot = item.get("gtin"), item.get("lot")
    try:
        unit = _unit_epc(item, gcp)
        if unit is not None and qty == 1:
            event["epcList"] = [unit]
            return
        epcs = (m.get("evidence") or {}).get("epcs")
        if (
            isinstance(epcs, list)
            and qty > 0
            and len(epcs) == qty
            and len(set(epcs)) == qty
            and all(isinstance(e, str) and e.startswith("urn:epc:id:") for e in epcs)
        ):
            event["epcList"] = list(epcs)
            return
        if gtin and lot:
            epc_class = lgtin_uri(gtin, lot, gcp)
        elif gtin:
            epc_class = gtin_class_uri(gtin, gcp)
        elif item.get("sku"):
            epc_class = sku_class_uri(str(item["sku"]))
        else:
            raise MappingError(
                f"movement.item: {qty} of a unit-level identity with no product class "
                "(an SSCC or a raw EPC moves one at a time)"
            )
    except EpcError as exc:
        raise MappingError(f"movement.item: {exc}") from exc
    element: dict[str, Any] = {"epcClass": epc_class, "quantity": qty}
    uom = m.get("uom") or "EA"
    if uom != "EA":  # EPCIS: no uom means a count of instances
        element["uom"] = uom
    event["quantityList"] = [element]


def _unit_epc(item: Mapping[str, Any], gcp: int) -> str | None:
    if item.get("gtin") and item.get("serial"):
        if item.get("epc"):
            return str(item["epc"])  # as read from the tag, already the SGTIN
        return sgtin_uri(str(item["gtin"]), str(item["serial"]), gcp)
    if item.get("sscc"):
        return str(item["epc"]) if item.get("epc") else sscc_uri(str(item["sscc"]), gcp)
    if item.get("epc") and not item.get("gtin") and not item.get("sku"):
        return str(item["epc"])
    return None


def _transactions(ref: Mapping[str, Any]) -> list[dict[str, str]]:
    """Business references as ``urn:edgetally:ref:<type>:<value>`` with the CBV type."""
    out = []
    for key in sorted(ref):
        kind = BIZ_TRANSACTION_TYPES.get(key.lower())
        value = ref[key]
        if kind is None or not isinstance(value, str) or not value:
            continue
        out.append(
            {"type": kind, "bizTransaction": f"urn:edgetally:ref:{key}:{quote(value, safe='')}"}
        )
    return out


def _event_time(observed_at: object, tz_name: str) -> tuple[str, str]:
    if not isinstance(observed_at, str):
        raise MappingError("movement.observed_at: required, expected an ISO 8601 time")
    try:
        when = datetime.fromisoformat(observed_at.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MappingError(
            f"movement.observed_at: {observed_at!r} is not an ISO 8601 time"
        ) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # the agent writes UTC
    return _iso(when), offset_at(when, tz_name)


def offset_at(when: datetime, tz_name: str) -> str:
    """The site's UTC offset at ``when`` as ``+HH:MM`` (daylight saving included)."""
    try:
        zone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise MappingError(f"timezone {tz_name!r}: not a known time zone") from exc
    delta = when.astimezone(zone).utcoffset()
    minutes = int(delta.total_seconds() // 60) if delta is not None else 0
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
