"""The records that flow through EdgeTally: Read -> Identity -> Movement.

Plain frozen dataclasses with JSON forms that round-trip exactly. The JSON of a
Movement is the wire format of the ledger protocol (DESIGN §5), so its
validation lives here and the reference ledger uses the same code.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

import orjson

MovementKind = Literal["receive", "ship", "transfer", "return", "count", "adjust", "count_close"]
MOVEMENT_KINDS: tuple[str, ...] = get_args(MovementKind)
ReadKind = Literal["barcode", "tag"]
FeedbackKind = Literal["good", "bad", "alarm"]
ITEM_FIELDS = ("gtin", "sku", "lot", "serial", "expiry", "epc", "sscc")
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_TEXT = 512  # any single text field; barcodes longer than this are not items
MAX_INT = 2**53 - 1  # the largest integer every JSON reader holds exactly
# Per-movement caps, the same at the dock (the outbox refuses to store more) and at
# the ledger (it rejects that movement with this reason): 7 MiB of evidence per
# movement once filled a ledger's database and its memory. A portal pass lists at
# most 1,000 EPCs (~27 KB) and a count_close its counted items, so evidence gets
# room for ~15,000 of those; refs are a few short business references.
MAX_EVIDENCE_BYTES = 256 * 1024  # movement.evidence as compact JSON, UTF-8
MAX_REF_BYTES = 4096  # movement.ref as compact JSON, UTF-8
MAX_REF_KEY = 64  # characters in one key of movement.ref
# In item and location ids: C0/C1 controls, and the bidirectional formatting marks
# that make "A-01" look like another code on a screen (Trojan Source, CVE-2021-42574).
_BAD_ID_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# A unit cost is a decimal *string* (a JSON number would be a float, and lose cents):
# up to 12 digits, up to 6 places, not negative. A currency is an ISO 4217 code.
_COST_RE = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,6})?$")
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
COSTED_KINDS = ("receive", "return", "adjust")


def dumps(obj: Any) -> str:
    """Canonical compact JSON: stable key order, so equal records are equal text.

    orjson gives the same text as ``json.dumps(sort_keys=True, ensure_ascii=False,
    separators=(",", ":"))`` ten times faster, on the hot path of every read.
    ValueError for what JSON cannot hold (lone surrogates, integers past 64 bits).
    """
    try:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode("utf-8")
    except orjson.JSONEncodeError as exc:
        raise ValueError(f"cannot encode as JSON: {exc}") from exc


_READ_OPTIONAL = (
    "symbology",
    "antenna",
    "rssi",
    "seen_count",
    "fault",
    "reader_first_seen_us",
    "reader_last_seen_us",
    "reader_offset_us",
)


@dataclass(frozen=True, slots=True)
class Read:
    """One read as a device delivered it: raw bytes, never cleaned or stripped."""

    id: str
    device: str
    kind: ReadKind
    data: bytes
    observed_at: str
    mono_ns: int
    boot_id: str
    symbology: str | None = None
    antenna: int | None = None
    rssi: float | None = None
    seen_count: int | None = None
    # What the driver found wrong with the frame (over-long, garbage, cut short):
    # the read is still kept and signalled bad with this reason, never dropped.
    fault: str | None = None
    # An RFID reader's own first/last-seen stamps for the tag (µs since the epoch, on
    # the reader's clock) and the driver's estimate of agent clock minus reader clock
    # then: reader_last_seen_us + reader_offset_us places the read on the agent's clock.
    reader_first_seen_us: int | None = None
    reader_last_seen_us: int | None = None
    reader_offset_us: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "device": self.device,
            "kind": self.kind,
            "data_b64": base64.b64encode(self.data).decode("ascii"),
            "observed_at": self.observed_at,
            "mono_ns": self.mono_ns,
            "boot_id": self.boot_id,
        }
        for name in _READ_OPTIONAL:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Read:
        v = _Validator(d, "read")
        read = cls(
            id=v.req("id"),
            device=v.req("device"),
            kind=cast(ReadKind, v.choice("kind", ("barcode", "tag"))),
            data=v.b64("data_b64"),
            observed_at=v.req("observed_at"),
            mono_ns=v.integer("mono_ns", minimum=0, maximum=2**63 - 1),
            boot_id=v.req("boot_id"),
            symbology=v.text("symbology"),
            antenna=v.optional_integer("antenna"),
            rssi=v.optional_number("rssi"),
            seen_count=v.optional_integer("seen_count"),
            fault=v.text("fault"),
            reader_first_seen_us=v.optional_integer("reader_first_seen_us"),
            reader_last_seen_us=v.optional_integer("reader_last_seen_us"),
            reader_offset_us=v.optional_integer("reader_offset_us", minimum=-MAX_INT),
        )
        v.no_extra(
            (
                "id",
                "device",
                "kind",
                "data_b64",
                "observed_at",
                "mono_ns",
                "boot_id",
                *_READ_OPTIONAL,
            )
        )
        return read

    def to_json(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> Read:
        return cls.from_dict(_load_object(text, "read"))


@dataclass(frozen=True, slots=True)
class Identity:
    """What a read means. ``kind`` says which of the fields carry it."""

    kind: Literal["gtin", "sscc", "epc", "location", "command", "sku", "unknown"]
    raw: str
    gtin: str | None = None
    lot: str | None = None
    serial: str | None = None
    expiry: str | None = None
    qty: int | None = None
    sscc: str | None = None
    sku: str | None = None
    epc: str | None = None
    location: str | None = None
    command: str | None = None
    argument: str | None = None
    warnings: tuple[str, ...] = ()
    error: str | None = None
    # GS1 detail beyond the item fields: the GLN of a location label (AI 414) or
    # an SGLN tag, the code as a GS1 element string in HRI form ("(01)...(21)..."),
    # measures (AI 310n-369n: ("3103", "0.150"), never quantities) and every
    # date AI as (ai, ISO date): 11 production, 13 packaging, 15 best before,
    # 16 sell by, 17 expiry.
    gln: str | None = None
    element_string: str | None = None
    measures: tuple[tuple[str, str], ...] = ()
    dates: tuple[tuple[str, str], ...] = ()

    def item(self) -> Item:
        """The item fields the ledger keeps: an SGTIN tag gives gtin + serial + epc,
        so on-hand is kept per GTIN; an SSCC tag gives sscc + epc."""
        return Item(
            gtin=self.gtin,
            sku=self.sku,
            lot=self.lot,
            serial=self.serial,
            expiry=self.expiry,
            epc=self.epc,
            sscc=self.sscc,
        )


@dataclass(frozen=True, slots=True)
class Item:
    gtin: str | None = None
    sku: str | None = None
    lot: str | None = None
    serial: str | None = None
    expiry: str | None = None
    epc: str | None = None
    sscc: str | None = None

    def key(self) -> str | None:
        """The identity on-hand is kept by: the trade item, else the unit."""
        return self.gtin or self.sku or self.sscc or self.epc

    def to_dict(self) -> dict[str, str]:
        return {k: v for k in ITEM_FIELDS if (v := getattr(self, k)) is not None}


@dataclass(frozen=True, slots=True)
class ClockStamp:
    """Enough to place a movement in time later if the wall clock was wrong."""

    synced: bool
    boot_id: str
    mono_ns: int

    def to_dict(self) -> dict[str, Any]:
        return {"synced": self.synced, "boot_id": self.boot_id, "mono_ns": self.mono_ns}


@dataclass(frozen=True, slots=True)
class Movement:
    """The unit the ledger receives; ``id`` is the idempotency key end to end.

    ``seq`` is None until the outbox assigns the agent's next gapless number
    in the transaction that stores it.
    """

    id: str
    agent: str
    kind: MovementKind
    item: Item
    qty: int
    station: str
    device: str
    observed_at: str
    clock: ClockStamp
    seq: int | None = None
    uom: str = "EA"
    from_: str | None = None
    to: str | None = None
    reason: str | None = None
    operator: str | None = None
    ref: Mapping[str, str] = field(default_factory=dict)
    evidence: Mapping[str, Any] = field(default_factory=dict)
    # What one unit cost, from a PO or ASN line (receive, return, adjust in); the
    # ledger values with it. Absent from the JSON when None, so movements without
    # a cost keep the exact JSON (and idempotency) they always had.
    unit_cost: str | None = None
    currency: str | None = None

    def with_seq(self, seq: int) -> Movement:
        # A plain copy: dataclasses.replace costs more than the SQLite insert.
        m = copy.copy(self)
        object.__setattr__(m, "seq", seq)
        return m

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "agent": self.agent,
            "seq": self.seq,
            "kind": self.kind,
            "item": self.item.to_dict(),
            "qty": self.qty,
            "uom": self.uom,
            "from": self.from_,
            "to": self.to,
            "reason": self.reason,
            "ref": dict(self.ref),
            "station": self.station,
            "device": self.device,
            "operator": self.operator,
            "observed_at": self.observed_at,
            "clock": self.clock.to_dict(),
            "evidence": dict(self.evidence),
        }
        if self.unit_cost is not None:
            out["unit_cost"] = self.unit_cost
        if self.currency is not None:
            out["currency"] = self.currency
        return out

    def to_json(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> Movement:
        return cls.from_dict(_load_object(text, "movement"))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Movement:
        """Validate and build; ValueError names the first bad field and why."""
        v = _Validator(d, "movement")
        mid = v.req("id")
        if not _UUID_RE.match(mid):
            raise ValueError("movement.id: expected a lowercase UUID string")
        kind = cast(MovementKind, v.choice("kind", MOVEMENT_KINDS))
        item_raw = v.mapping("item")
        iv = _Validator(item_raw, "movement.item")
        item = Item(**{k: id_text(iv.text(k), f"movement.item.{k}") for k in ITEM_FIELDS})
        iv.no_extra(ITEM_FIELDS)
        if kind == "count_close":
            # "this is all LOCATION holds": about a place, not an item
            if item.key() is not None:
                raise ValueError("movement.item: a count_close names no item (expected {})")
        elif item.key() is None:
            raise ValueError("movement.item: expected at least one of gtin, sku, sscc, epc")
        clock_raw = v.mapping("clock")
        cv = _Validator(clock_raw, "movement.clock")
        clock = ClockStamp(
            synced=cv.boolean("synced"),
            boot_id=cv.req("boot_id"),
            mono_ns=cv.integer("mono_ns", minimum=0, maximum=2**63 - 1),
        )
        seq = v.optional_integer("seq")
        if seq is not None and seq < 1:
            raise ValueError("movement.seq: expected an integer >= 1")
        movement = cls(
            id=mid,
            agent=v.req("agent"),
            seq=seq,
            kind=kind,
            item=item,
            # A count may find none (0); a count_close's qty is how many items were counted.
            qty=v.integer("qty", minimum=0 if kind in ("count", "count_close") else 1),
            uom=v.text("uom") or "EA",
            from_=id_text(v.text("from"), "movement.from"),
            to=id_text(v.text("to"), "movement.to"),
            reason=v.text("reason"),
            ref=v.text_map("ref"),
            station=v.req("station"),
            device=v.req("device"),
            operator=v.text("operator"),
            observed_at=v.req("observed_at"),
            clock=clock,
            evidence=v.mapping("evidence", required=False, max_bytes=MAX_EVIDENCE_BYTES),
            unit_cost=_cost(_no_number(d.get("unit_cost"), v), kind),
            currency=_currency(v.text("currency")),
        )
        if movement.currency is not None and movement.unit_cost is None:
            raise ValueError("movement.currency: given without a unit_cost")
        v.no_extra(
            (
                "id",
                "agent",
                "seq",
                "kind",
                "item",
                "qty",
                "uom",
                "from",
                "to",
                "reason",
                "ref",
                "station",
                "device",
                "operator",
                "observed_at",
                "clock",
                "evidence",
                "unit_cost",
                "currency",
            )
        )
        _check_locations(movement)
        return movement


def id_text(value: str | None, where: str) -> str | None:
    """An item or location id in NFC ("café" typed or scanned either way is one item),
    refused if it holds a control or bidirectional formatting character."""
    if value is None:
        return None
    bad = _BAD_ID_CHARS.search(value)
    if bad:
        raise ValueError(
            f"{where}: control or bidirectional character U+{ord(bad.group()):04X} "
            f"in an id (at position {bad.start()})"
        )
    return unicodedata.normalize("NFC", value)


def check_limits(m: Movement) -> None:
    """The per-movement caps (MAX_EVIDENCE_BYTES, MAX_REF_BYTES, MAX_REF_KEY), for a
    movement built in code rather than parsed; ValueError says which and by how much."""
    for key in m.ref:
        if len(key) > MAX_REF_KEY:
            raise ValueError(
                f"movement.ref: key {key[:20]!r}… longer than {MAX_REF_KEY} characters"
            )
    for name, value, cap in (
        ("ref", m.ref, MAX_REF_BYTES),
        ("evidence", m.evidence, MAX_EVIDENCE_BYTES),
    ):
        if value:
            size = len(orjson.dumps(dict(value)))
            if size > cap:
                raise ValueError(f"movement.{name}: {size} bytes as JSON, at most {cap}")


def _cost(text: str | None, kind: str) -> str | None:
    if text is None:
        return None
    if not _COST_RE.match(text):
        raise ValueError(
            'movement.unit_cost: expected a decimal string such as "4.25" '
            f"(at most 6 places, not negative), got {text[:40]!r}"
        )
    if kind not in COSTED_KINDS:
        raise ValueError(
            f"movement.unit_cost: a {kind} carries no cost (only {', '.join(COSTED_KINDS)})"
        )
    return text


def _no_number(value: object, v: _Validator) -> str | None:
    """The cost's text; a JSON number is refused by name: as a float it has lost the cents."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError(
            'movement.unit_cost: expected a decimal string such as "4.25", not a JSON number '
            "(a float cannot hold every cent)"
        )
    return v.text("unit_cost")


def _currency(text: str | None) -> str | None:
    if text is not None and not _CURRENCY_RE.match(text):
        raise ValueError(
            f"movement.currency: expected an ISO 4217 code such as EUR, got {text[:40]!r}"
        )
    return text


_NEEDS = {
    "receive": ("to",),
    "ship": ("from",),
    "transfer": ("from", "to"),
    "return": ("to",),
    "count": ("to",),
    "count_close": ("to",),
}


def _check_locations(m: Movement) -> None:
    """Each kind names the locations it touches; ``adjust`` needs one of them."""
    present = {"from": m.from_, "to": m.to}
    if m.kind == "adjust":
        if bool(m.from_) == bool(m.to):
            raise ValueError("movement: an adjust needs exactly one of from (remove) or to (add)")
        return
    for name in _NEEDS[m.kind]:
        if not present[name]:
            raise ValueError(f"movement.{name}: a {m.kind} needs a {name!r} location")


@dataclass(frozen=True, slots=True)
class Feedback:
    """What the operator is told about a read: good, bad (with a reason) or alarm."""

    kind: FeedbackKind
    device: str
    read_id: str | None = None
    reason: str | None = None


def _json_safe(value: Any, where: str) -> int:
    """What JSON cannot hold exactly is refused here, so every record round-trips;
    the size of its compact UTF-8 JSON."""
    try:
        text = json.dumps(value, allow_nan=False)
        text.encode("utf-8")
        return len(orjson.dumps(value))
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise ValueError(f"{where}: cannot be stored as JSON ({exc})") from exc


def _load_object(text: str, what: str) -> Mapping[str, Any]:
    try:
        obj = json.loads(text)  # NaN/Infinity pass here; the field checks refuse them by name
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what}: not JSON ({exc.msg} at {exc.pos})") from exc
    if not isinstance(obj, dict):
        raise ValueError(f"{what}: expected a JSON object")
    return obj


class _Validator:
    """Field-by-field checks with messages that name the path of the field."""

    def __init__(self, d: Any, path: str) -> None:
        if not isinstance(d, Mapping):
            raise ValueError(f"{path}: expected an object")
        self.d = d
        self.path = path

    def _get(self, key: str) -> Any:
        return self.d.get(key)

    def req(self, key: str) -> str:
        value = self.text(key)
        if value is None:
            raise ValueError(f"{self.path}.{key}: required, expected a non-empty string")
        return value

    def text(self, key: str) -> str | None:
        value = self._get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ValueError(f"{self.path}.{key}: expected a string, got {type(value).__name__}")
        if len(value) > MAX_TEXT:
            raise ValueError(f"{self.path}.{key}: longer than {MAX_TEXT} characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"{self.path}.{key}: not valid Unicode text") from exc
        return value

    def choice(self, key: str, options: tuple[str, ...]) -> str:
        value = self._get(key)
        if value not in options:
            raise ValueError(
                f"{self.path}.{key}: expected one of {', '.join(options)}, got {value!r}"
            )
        return cast(str, value)

    def integer(self, key: str, minimum: int | None = None, maximum: int = MAX_INT) -> int:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{self.path}.{key}: expected an integer, got {value!r}")
        if minimum is not None and value < minimum:
            raise ValueError(f"{self.path}.{key}: expected an integer >= {minimum}, got {value}")
        if value > maximum:
            raise ValueError(f"{self.path}.{key}: expected an integer <= {maximum}, got {value}")
        return value

    def optional_integer(self, key: str, minimum: int | None = None) -> int | None:
        return None if self._get(key) is None else self.integer(key, minimum)

    def optional_number(self, key: str) -> float | None:
        value = self._get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{self.path}.{key}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{self.path}.{key}: expected a finite number, got {value!r}")
        return float(value)

    def boolean(self, key: str) -> bool:
        value = self._get(key)
        if not isinstance(value, bool):
            raise ValueError(f"{self.path}.{key}: expected true or false, got {value!r}")
        return value

    def mapping(
        self, key: str, required: bool = True, max_bytes: int | None = None
    ) -> dict[str, Any]:
        value = self._get(key)
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            raise ValueError(f"{self.path}.{key}: expected an object")
        size = _json_safe(value, f"{self.path}.{key}")
        if max_bytes is not None and size > max_bytes:
            raise ValueError(f"{self.path}.{key}: {size} bytes as JSON, at most {max_bytes}")
        return value

    def text_map(self, key: str) -> dict[str, str]:
        value = self.mapping(key, required=False, max_bytes=MAX_REF_BYTES)
        for k, item in value.items():
            if len(k) > MAX_REF_KEY:
                raise ValueError(
                    f"{self.path}.{key}: key {k[:20]!r}… longer than {MAX_REF_KEY} characters"
                )
            if not isinstance(item, str) or len(item) > MAX_TEXT:
                raise ValueError(f"{self.path}.{key}.{k}: expected a string")
        return value

    def b64(self, key: str) -> bytes:
        value = self._get(key)
        if not isinstance(value, str):
            raise ValueError(f"{self.path}.{key}: expected base64 text")
        try:
            return base64.b64decode(value, validate=True)
        except ValueError as exc:
            raise ValueError(f"{self.path}.{key}: not valid base64") from exc

    def no_extra(self, allowed: tuple[str, ...]) -> None:
        extra = sorted(set(self.d) - set(allowed))
        if extra:
            raise ValueError(f"{self.path}: unknown field {extra[0]!r}")
