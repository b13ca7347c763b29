"""Reader configuration parameters: GET/SET_READER_CONFIG (spec 16.2.6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from drivers.llrp_frames.wire import Field, Flags, Parameter, Sub, Wire, register


@register
@dataclass(frozen=True, slots=True)
class KeepaliveSpec(Parameter):
    trigger: int = 0  # 0 Null, 1 Periodic
    interval_ms: int = 0
    TYPE: ClassVar[int] = 220
    WIRE: ClassVar[Wire] = (
        Field("trigger", "u8", "KeepaliveTriggerType"),
        Field("interval_ms", "u32", "PeriodicTriggerValue"),
    )


@register
@dataclass(frozen=True, slots=True)
class EventNotificationState(Parameter):
    event_type: int  # 0 Hopping … 2 ROSpec … 8 Antenna
    enabled: bool
    TYPE: ClassVar[int] = 245
    WIRE: ClassVar[Wire] = (
        Field("event_type", "u16", "EventType"),
        Flags("NotificationState", "u8", (("enabled", 7),)),
    )


@register
@dataclass(frozen=True, slots=True)
class ReaderEventNotificationSpec(Parameter):
    states: tuple[EventNotificationState, ...]
    TYPE: ClassVar[int] = 244
    WIRE: ClassVar[Wire] = (Sub("states", EventNotificationState, "many"),)


@register
@dataclass(frozen=True, slots=True)
class EventsAndReports(Parameter):
    hold_upon_reconnect: bool = False
    TYPE: ClassVar[int] = 226
    WIRE: ClassVar[Wire] = (
        Flags("HoldEventsAndReportsUponReconnect", "u8", (("hold_upon_reconnect", 7),)),
    )


@register
@dataclass(frozen=True, slots=True)
class Identification(Parameter):
    id_type: int  # 0 MAC, 1 EPC
    reader_id: bytes
    TYPE: ClassVar[int] = 218
    WIRE: ClassVar[Wire] = (
        Field("id_type", "u8", "IDType"),
        Field("reader_id", "bytesv", "ReaderID"),
    )


@register
@dataclass(frozen=True, slots=True)
class AntennaProperties(Parameter):
    antenna_id: int
    connected: bool = True
    gain: int = 0  # dBi × 100
    TYPE: ClassVar[int] = 221
    WIRE: ClassVar[Wire] = (
        Flags("AntennaConnected", "u8", (("connected", 7),)),
        Field("antenna_id", "u16", "AntennaID"),
        Field("gain", "s16", "AntennaGain"),
    )


@register
@dataclass(frozen=True, slots=True)
class AccessReportSpec(Parameter):
    trigger: int = 0  # 0 whenever ROReport is generated, 1 end of AccessSpec
    TYPE: ClassVar[int] = 239
    WIRE: ClassVar[Wire] = (Field("trigger", "u8", "AccessReportTrigger"),)
