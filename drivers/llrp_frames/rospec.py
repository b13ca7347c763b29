"""The ROSpec and what it asks to be reported (spec 16.2.4 and 16.2.7.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from drivers.llrp_frames.wire import Field, Flags, Parameter, Rest, Sub, Wire, register


@register
@dataclass(frozen=True, slots=True)
class ROSpecStartTrigger(Parameter):
    trigger: int = 1  # 0 Null, 1 Immediate, 2 Periodic, 3 GPI
    other: tuple[Parameter, ...] = ()  # PeriodicTriggerValue / GPITriggerValue kept raw
    TYPE: ClassVar[int] = 179
    WIRE: ClassVar[Wire] = (Field("trigger", "u8", "ROSpecStartTriggerType"), Rest())


@register
@dataclass(frozen=True, slots=True)
class ROSpecStopTrigger(Parameter):
    trigger: int = 0  # 0 Null, 1 Duration, 2 GPI with timeout
    duration_ms: int = 0
    other: tuple[Parameter, ...] = ()
    TYPE: ClassVar[int] = 182
    WIRE: ClassVar[Wire] = (
        Field("trigger", "u8", "ROSpecStopTriggerType"),
        Field("duration_ms", "u32", "DurationTriggerValue"),
        Rest(),
    )


@register
@dataclass(frozen=True, slots=True)
class ROBoundarySpec(Parameter):
    start: ROSpecStartTrigger = ROSpecStartTrigger()
    stop: ROSpecStopTrigger = ROSpecStopTrigger()
    TYPE: ClassVar[int] = 178
    WIRE: ClassVar[Wire] = (
        Sub("start", ROSpecStartTrigger, "req"),
        Sub("stop", ROSpecStopTrigger, "req"),
    )


@register
@dataclass(frozen=True, slots=True)
class TagObservationTrigger(Parameter):
    trigger: int = 0  # 0 UponNTags, 1 UponSilenceMs, 2 UponNAttempts
    number_of_tags: int = 0
    number_of_attempts: int = 0
    t_ms: int = 0
    timeout_ms: int = 0
    TYPE: ClassVar[int] = 185
    WIRE: ClassVar[Wire] = (
        Field("trigger", "u8", "TriggerType"),
        Field(None, "u8", "Reserved"),
        Field("number_of_tags", "u16", "NumberOfTags"),
        Field("number_of_attempts", "u16", "NumberOfAttempts"),
        Field("t_ms", "u16", "T"),
        Field("timeout_ms", "u32", "Timeout"),
    )


@register
@dataclass(frozen=True, slots=True)
class AISpecStopTrigger(Parameter):
    trigger: int = 0  # 0 Null, 1 Duration, 2 GPI with timeout, 3 Tag observation
    duration_ms: int = 0
    tag_observation: TagObservationTrigger | None = None
    other: tuple[Parameter, ...] = ()
    TYPE: ClassVar[int] = 184
    WIRE: ClassVar[Wire] = (
        Field("trigger", "u8", "AISpecStopTriggerType"),
        Field("duration_ms", "u32", "DurationTrigger"),
        Sub("tag_observation", TagObservationTrigger),
        Rest(),
    )


@register
@dataclass(frozen=True, slots=True)
class AISpec(Parameter):
    antenna_ids: tuple[int, ...]  # (0,) = every antenna
    stop: AISpecStopTrigger = AISpecStopTrigger()
    other: tuple[Parameter, ...] = ()  # InventoryParameterSpec (kept raw), Custom
    TYPE: ClassVar[int] = 183
    WIRE: ClassVar[Wire] = (
        Field("antenna_ids", "u16v", "AntennaIDs"),
        Sub("stop", AISpecStopTrigger, "req"),
        Rest(),
    )


@register
@dataclass(frozen=True, slots=True)
class C1G2EPCMemorySelector(Parameter):
    enable_crc: bool = False
    enable_pc: bool = False
    TYPE: ClassVar[int] = 348
    WIRE: ClassVar[Wire] = (Flags("flags", "u8", (("enable_crc", 7), ("enable_pc", 6))),)


CONTENT_FIELDS = (
    "rospec_id",
    "spec_index",
    "inventory_parameter_spec_id",
    "antenna_id",
    "channel_index",
    "peak_rssi",
    "first_seen",
    "last_seen",
    "tag_seen_count",
    "access_spec_id",
)


@register
@dataclass(frozen=True, slots=True)
class TagReportContentSelector(Parameter):
    """Which TagReportData fields the client asked for (bits 15..6, in CONTENT_FIELDS order)."""

    rospec_id: bool = False
    spec_index: bool = False
    inventory_parameter_spec_id: bool = False
    antenna_id: bool = True
    channel_index: bool = False
    peak_rssi: bool = True
    first_seen: bool = True
    last_seen: bool = True
    tag_seen_count: bool = True
    access_spec_id: bool = False
    epc_memory: C1G2EPCMemorySelector | None = None
    other: tuple[Parameter, ...] = ()
    TYPE: ClassVar[int] = 238
    WIRE: ClassVar[Wire] = (
        Flags("flags", "u16", tuple(zip(CONTENT_FIELDS, range(15, 5, -1), strict=True))),
        Sub("epc_memory", C1G2EPCMemorySelector),
        Rest(),
    )


@register
@dataclass(frozen=True, slots=True)
class ROReportSpec(Parameter):
    trigger: int = 1  # 0 None, 1 Upon N tags or end of AISpec, 2 … or end of ROSpec
    n: int = 0
    selector: TagReportContentSelector = TagReportContentSelector()
    other: tuple[Parameter, ...] = ()
    TYPE: ClassVar[int] = 237
    WIRE: ClassVar[Wire] = (
        Field("trigger", "u8", "ROReportTrigger"),
        Field("n", "u16", "N"),
        Sub("selector", TagReportContentSelector, "req"),
        Rest(),
    )


ROSPEC_DISABLED, ROSPEC_INACTIVE, ROSPEC_ACTIVE = 0, 1, 2


@register
@dataclass(frozen=True, slots=True)
class ROSpec(Parameter):
    rospec_id: int
    boundary: ROBoundarySpec
    specs: tuple[AISpec, ...]
    priority: int = 0
    state: int = ROSPEC_DISABLED
    report: ROReportSpec | None = None
    other: tuple[Parameter, ...] = ()  # RFSurveySpec, Custom
    TYPE: ClassVar[int] = 177
    WIRE: ClassVar[Wire] = (
        Field("rospec_id", "u32", "ROSpecID"),
        Field("priority", "u8", "Priority"),
        Field("state", "u8", "CurrentState"),
        Sub("boundary", ROBoundarySpec, "req"),
        Sub("specs", AISpec, "many"),
        Rest(),  # written before the ROReportSpec, as this codec always has
        Sub("report", ROReportSpec),
    )
