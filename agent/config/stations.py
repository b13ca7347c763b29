"""[[stations]]: what each station kind does, needs, and the keys only some kinds use."""

from __future__ import annotations

import re
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Literal

from agent.config.meta import _help
from agent.errors import ConfigError

StationKind = Literal["receiving", "shipping", "returns", "putaway", "count", "portal", "zone"]
Disposition = Literal["restock", "damaged", "quarantine"]


@dataclass(frozen=True)
class StationSettings:
    name: str = field(metadata=_help("station name, sent with every movement", id=True))
    kind: StationKind = field(metadata=_help("what the station does (DESIGN §3)"))
    location: str | None = field(
        default=None,
        metadata=_help(
            "the station's location: receiving dock (to), shipping dock (from), returns "
            "area (to), default count location; required for receiving, shipping, returns"
        ),
    )
    devices: list[str] = field(default_factory=list, metadata=_help("ids of its devices"))
    staging: str | None = field(
        default=None,
        metadata=_help("putaway only, required: the staging location items are moved from"),
    )
    quarantine_location: str | None = field(
        default=None,
        metadata=_help("returns only: where `quarantine` returns go (default: location)"),
    )
    disposition: Disposition = field(
        default="restock",
        metadata=_help("returns only: the disposition until a DISP code says otherwise"),
    )
    asn_file: Path | None = field(
        default=None,
        metadata=_help(
            'receiving only: JSON of expected lines per PO, {"PO-1": {"<GTIN>": qty}}; '
            "over/short is reported when the PO closes; a line "
            '{"qty": 24, "unit_cost": "4.25", "currency": "EUR"} also puts its cost on the receipts'
        ),
    )
    debounce_ms: int = field(
        default=0,
        metadata=_help(
            "the same data from the same device within this time is one (double) read; 0: off",
            minimum=0,
            maximum=60000,
        ),
    )
    unknown: Literal["reject", "accept-as-sku"] = field(
        default="reject",
        metadata=_help("codes that are not GS1, EPC, a location or a command: refuse, or a SKU"),
    )
    raw_tag_ids: bool = field(
        default=False,
        metadata=_help(
            "RFID: a tag whose EPC is a TID or no GS1 scheme (E200..., E280...) is a house "
            "item key, urn:epc:raw:BITS.xHEX (closed-loop assets); off: an unknown, "
            "its hex kept"
        ),
    )
    pairing: bool = field(
        default=True, metadata=_help("handhelds may join this station with PAIR:<name>")
    )
    require_operator: bool = field(
        default=False, metadata=_help("items are refused until a badge (OP:<id>) is scanned")
    )
    # ---- RFID: portal (direction through a door) and zone (Arrived/Moved/Departed) ----
    outside_antennas: list[int] = field(
        default_factory=list,
        metadata=_help("portal only, required: antenna ids on the outside (yard) side", minimum=1),
    )
    inside_antennas: list[int] = field(
        default_factory=list,
        metadata=_help("portal only, required: antenna ids on the inside side", minimum=1),
    )
    quiet_ms: int = field(
        default=1500,
        metadata=_help(
            "portal only: a tag's pass is decided once it has not been read for this long",
            minimum=50,
            maximum=600000,
        ),
    )
    min_reads: int = field(
        default=2,
        metadata=_help(
            "portal only: reads needed on each side before a crossing is believed",
            minimum=1,
            maximum=10000,
        ),
    )
    min_confidence: float = field(
        default=0.75,
        metadata=_help(
            "portal only: direction confidence (0.5-1, see agent/rules/portal.py) below which "
            "a pass moves nothing",
            minimum=0.5,
            maximum=1.0,
        ),
    )
    max_track_ms: int = field(
        default=60000,
        metadata=_help(
            "portal only: a tag read without pause for this long (parked in the field) is "
            "decided with what it has and tracked afresh; on the reader's clock when its "
            "reads carry its stamps",
            minimum=1000,
            maximum=3600000,
        ),
    )
    max_tracks: int = field(
        default=20000,
        metadata=_help(
            "portal and zone: tags tracked in memory at once; past it a portal decides its "
            "oldest pass early and a zone leaves new tags untracked (counted in status)",
            minimum=10,
            maximum=1000000,
        ),
    )
    class_level: bool = field(
        default=False,
        metadata=_help("portal only: one movement per GTIN with a qty, not one per SGTIN"),
    )
    outside_location: str | None = field(
        default=None,
        metadata=_help(
            "portal only: the location outside the door; set, crossings are transfers "
            "(in: outside -> location, out: location -> outside), unset, receive and ship"
        ),
    )
    dedup_ms: int = field(
        default=3600000,
        metadata=_help(
            "portal only: a second crossing of a tag in the same direction within this time "
            "(with no crossing back between) moves nothing; decided crossings are kept this long",
            minimum=1000,
            maximum=30 * 86400000,
        ),
    )
    beam_gpi: int | None = field(
        default=None,
        metadata=_help(
            "portal only: GPI port of a beam sensor across the door; set, a pass moves stock "
            "only if the beam was broken during it (the reader's device needs the same "
            "gpi_port)",
            minimum=1,
            maximum=65535,
        ),
    )
    beam_device: str | None = field(
        default=None,
        metadata=_help("portal only: the device whose GPI is the beam; unset: the only device"),
    )
    beam_broken: Literal["high", "low"] = field(
        default="high",
        metadata=_help("portal only: the GPI level while the beam is broken"),
    )
    beam_margin_ms: int = field(
        default=500,
        metadata=_help(
            "portal only: how long before a pass's first read or after its last the beam "
            "may have been broken and still count for it",
            minimum=0,
            maximum=60000,
        ),
    )
    antenna_locations: list[str] = field(
        default_factory=list,
        metadata=_help(
            'zone only, required: where each antenna looks, as "antenna=LOCATION" '
            '(["1=SHELF-A", "2=SHELF-B"]); antennas sharing a location are one place'
        ),
    )
    zone_from_location: str | None = field(
        default=None,
        metadata=_help(
            "zone only: where arriving tags come from; set, an arrival is a transfer from "
            "it, unset, a receive"
        ),
    )
    departed_location: str | None = field(
        default=None,
        metadata=_help(
            "zone only: where departing tags go; set, a departure is a transfer to it, "
            "unset, a ship from the tag's last location"
        ),
    )
    departed_after_ms: int = field(
        default=30000,
        metadata=_help(
            "zone only: a present tag not read for this long has departed",
            minimum=100,
            maximum=86400000,
        ),
    )
    mobility_threshold_dbm: float = field(
        default=6.0,
        metadata=_help(
            "zone only (EdgeX mobility profile): how much stronger (dB) a new location's mean "
            "RSSI must be, while the current one is fresh, for the tag to move",
            minimum=0.0,
            maximum=100.0,
        ),
    )
    mobility_holdoff_ms: int = field(
        default=500,
        metadata=_help(
            "zone only (EdgeX mobility profile): for this long after the current location's "
            "last read the full threshold applies",
            minimum=0,
            maximum=86400000,
        ),
    )
    mobility_slope: float = field(
        default=-0.008,
        metadata=_help(
            "zone only (EdgeX mobility profile): dB per ms the threshold falls after the "
            "holdoff (older reads at the current location count less)",
            minimum=-100.0,
            maximum=0.0,
        ),
    )

    @property
    def beam(self) -> tuple[str, int] | None:
        """(device, GPI port) of the portal's beam sensor, if it has one."""
        if self.beam_gpi is None:
            return None
        device = self.beam_device or (self.devices[0] if self.devices else "")
        return device, self.beam_gpi

    def check(self) -> list[tuple[str, str]]:
        """Keys each RFID kind needs, and RFID keys set on a kind that does not use them."""
        problems: list[tuple[str, str]] = []
        defaults = {f.name: f for f in fields(self)}
        for key in _RFID_ONLY:
            spec = defaults[key]
            default = spec.default if spec.default_factory is MISSING else spec.default_factory()
            kinds = _RFID_ONLY[key]
            if getattr(self, key) != default and self.kind not in kinds:
                problems.append((key, f"only for a {' or '.join(kinds)} station, not {self.kind}"))
        if self.kind == "portal":
            if not self.location:
                problems.append(("location", "required for a portal station (the inside)"))
            if not self.outside_antennas:
                problems.append(("outside_antennas", "a non-empty list of antenna ids"))
            if not self.inside_antennas:
                problems.append(("inside_antennas", "a non-empty list of antenna ids"))
            both = sorted(set(self.outside_antennas) & set(self.inside_antennas))
            if both:
                problems.append(
                    ("inside_antennas", f"antennas on one side only; {both} are also outside")
                )
            if self.dedup_ms < self.max_track_ms + self.quiet_ms:
                problems.append(
                    (
                        "dedup_ms",
                        "at least max_track_ms + quiet_ms: a restart rebuilds passes from "
                        "that long ago, and their crossings must still be known",
                    )
                )
            if self.outside_location is not None and self.outside_location == self.location:
                problems.append(("outside_location", "a location other than `location`"))
            if self.beam_gpi is not None and self.beam_device is None and len(self.devices) != 1:
                problems.append(
                    ("beam_device", "the device whose GPI is the beam (one of `devices`)")
                )
            if self.beam_device is not None and self.beam_device not in self.devices:
                problems.append(("beam_device", f"one of `devices` {self.devices}"))
            if self.beam_device is not None and self.beam_gpi is None:
                problems.append(("beam_gpi", "the beam's GPI port, with beam_device"))
        if self.kind == "zone":
            if not self.antenna_locations:
                problems.append(
                    ("antenna_locations", 'a non-empty list of "antenna=LOCATION" strings')
                )
            seen: set[int] = set()
            for text in self.antenna_locations:
                parsed = parse_antenna_location(text)
                if parsed is None:
                    problems.append(
                        (
                            "antenna_locations",
                            f'"antenna=LOCATION" with an antenna id 1-65535, got {text!r}',
                        )
                    )
                elif parsed[0] in seen:
                    problems.append(
                        ("antenna_locations", f"each antenna once; {parsed[0]} is listed twice")
                    )
                else:
                    seen.add(parsed[0])
        return problems


_RFID_ONLY = {
    "outside_antennas": ("portal",),
    "inside_antennas": ("portal",),
    "quiet_ms": ("portal",),
    "min_reads": ("portal",),
    "min_confidence": ("portal",),
    "max_track_ms": ("portal",),
    "max_tracks": ("portal", "zone"),
    "class_level": ("portal",),
    "outside_location": ("portal",),
    "dedup_ms": ("portal",),
    "beam_gpi": ("portal",),
    "beam_device": ("portal",),
    "beam_broken": ("portal",),
    "beam_margin_ms": ("portal",),
    "antenna_locations": ("zone",),
    "zone_from_location": ("zone",),
    "departed_location": ("zone",),
    "departed_after_ms": ("zone",),
    "mobility_threshold_dbm": ("zone",),
    "mobility_holdoff_ms": ("zone",),
    "mobility_slope": ("zone",),
}
_LOCATION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")


def parse_antenna_location(text: str) -> tuple[int, str] | None:
    """``"3=SHELF-B"`` -> (3, "SHELF-B"); None when it is not that shape."""
    antenna, eq, location = text.partition("=")
    if not eq or not antenna.isdigit() or not antenna.isascii() or not _LOCATION_RE.match(location):
        return None
    number = int(antenna)
    return (number, location) if 1 <= number <= 65535 else None


_NEEDS_LOCATION = ("receiving", "shipping", "returns")
_ONLY_FOR = {
    "staging": ("putaway",),
    "quarantine_location": ("returns",),
    "asn_file": ("receiving",),
}


def _check_station(st: StationSettings, where: str, file: str) -> None:
    """What each station kind needs, and keys that mean nothing for its kind."""
    if st.kind in _NEEDS_LOCATION and not st.location:
        raise ConfigError(file, f"{where}.location", f"required for a {st.kind} station")
    if st.kind == "putaway":
        if not st.staging:
            raise ConfigError(
                file, f"{where}.staging", "required for a putaway station (where items come from)"
            )
        if st.location:
            raise ConfigError(
                file,
                f"{where}.location",
                "not used by a putaway station: items go from `staging` to the scanned location",
            )
    for key, kinds in _ONLY_FOR.items():
        if getattr(st, key) is not None and st.kind not in kinds:
            raise ConfigError(
                file, f"{where}.{key}", f"only for a {' or '.join(kinds)} station, not {st.kind}"
            )
    if st.disposition != "restock" and st.kind != "returns":
        raise ConfigError(
            file, f"{where}.disposition", f"only for a returns station, not {st.kind}"
        )
    if st.asn_file is not None:
        from agent.rules.asn import AsnError, load_asn

        try:
            load_asn(st.asn_file)
        except AsnError as exc:
            raise ConfigError(file, f"{where}.asn_file", str(exc)) from exc
