"""LLRP messages (spec 16.1): typed bodies, the 10-byte header, and cutting a stream into frames."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from drivers.llrp_frames.capabilities import (
    C1G2LLRPCapabilities,
    GeneralDeviceCapabilities,
    LLRPCapabilities,
    RegulatoryCapabilities,
)
from drivers.llrp_frames.config import (
    AccessReportSpec,
    AntennaProperties,
    EventsAndReports,
    Identification,
    KeepaliveSpec,
    ReaderEventNotificationSpec,
)
from drivers.llrp_frames.constants import (
    ADD_ROSPEC,
    CLOSE_CONNECTION,
    CUSTOM_HEADER,
    CUSTOM_MESSAGE,
    DELETE_ACCESSSPEC,
    DELETE_ROSPEC,
    DISABLE_ACCESSSPEC,
    DISABLE_ROSPEC,
    ENABLE_ACCESSSPEC,
    ENABLE_EVENTS_AND_REPORTS,
    ENABLE_ROSPEC,
    ERROR_MESSAGE,
    GET_READER_CAPABILITIES,
    GET_READER_CAPABILITIES_RESPONSE,
    GET_READER_CONFIG,
    GET_READER_CONFIG_RESPONSE,
    GET_REPORT,
    HEADER,
    KEEPALIVE,
    KEEPALIVE_ACK,
    MESSAGE_NAMES,
    READER_EVENT_NOTIFICATION,
    RESPONSE_TO,
    RO_ACCESS_REPORT,
    SET_READER_CONFIG,
    START_ROSPEC,
    STOP_ROSPEC,
    VERSION,
)
from drivers.llrp_frames.rospec import ROReportSpec, ROSpec
from drivers.llrp_frames.status import LLRPStatus, ReaderEventNotificationData
from drivers.llrp_frames.tags import TagReportData
from drivers.llrp_frames.wire import (
    Field,
    Flags,
    Parameter,
    Rest,
    Sub,
    Wire,
    decode_fields,
    encode_fields,
)


class Message:
    """A decoded LLRP message; ``kind`` is its type number, ``WIRE`` its body's fields."""

    __slots__ = ()
    TYPE: ClassVar[int] = -1
    WIRE: ClassVar[Wire] = ()
    msg_id: int

    @property
    def kind(self) -> int:
        return self.TYPE

    @property
    def name(self) -> str:
        return MESSAGE_NAMES.get(self.kind, f"type {self.kind}")

    def body(self) -> bytes:
        return encode_fields(self, self.WIRE)

    def encode(self) -> bytes:
        body = self.body()
        return HEADER.pack((VERSION << 10) | self.kind, HEADER.size + len(body), self.msg_id) + body

    @classmethod
    def decode_body(cls, kind: int, msg_id: int, body: bytes) -> Self:
        values: dict[str, Any] = decode_fields(cls.WIRE, body, MESSAGE_NAMES[kind])
        if issubclass(cls, _Typed):
            values["type"] = kind
        make: Callable[..., Self] = cls  # each subclass is a dataclass of these fields
        return make(msg_id=msg_id, **values)


class _Typed(Message):
    """A class that serves several message types: its ``type`` field says which."""

    __slots__ = ()
    type: int

    @property
    def kind(self) -> int:
        return self.type


@dataclass(frozen=True, slots=True)
class Bare(_Typed):
    """A message with no fields: CLOSE_CONNECTION, KEEPALIVE(_ACK), GET_REPORT, ENABLE_EVENTS_AND_REPORTS."""

    type: int
    msg_id: int = 0
    other: tuple[Parameter, ...] = ()
    WIRE: ClassVar[Wire] = (Rest(),)


@dataclass(frozen=True, slots=True)
class StatusResponse(_Typed):
    """A response carrying only an LLRPStatus, and ERROR_MESSAGE."""

    type: int
    msg_id: int = 0
    status: LLRPStatus = LLRPStatus()  # noqa: RUF009 (frozen, so one shared default is safe)
    other: tuple[Parameter, ...] = ()
    WIRE: ClassVar[Wire] = (Sub("status", LLRPStatus, "req"), Rest())


@dataclass(frozen=True, slots=True)
class SpecCommand(_Typed):
    """DELETE/START/STOP/ENABLE/DISABLE_ROSPEC and the AccessSpec ones: a u32 spec id (0 = all)."""

    type: int
    msg_id: int = 0
    spec_id: int = 0
    WIRE: ClassVar[Wire] = (Field("spec_id", "u32", "spec id"),)


@dataclass(frozen=True, slots=True)
class GetReaderCapabilities(Message):
    msg_id: int = 0
    requested: int = 0  # 0 all, 1 general, 2 LLRP, 3 regulatory, 4 air protocol
    other: tuple[Parameter, ...] = ()
    TYPE: ClassVar[int] = GET_READER_CAPABILITIES
    WIRE: ClassVar[Wire] = (Field("requested", "u8", "RequestedData"), Rest())


@dataclass(frozen=True, slots=True)
class GetReaderCapabilitiesResponse(Message):
    msg_id: int = 0
    status: LLRPStatus = LLRPStatus()  # noqa: RUF009 (frozen, so one shared default is safe)
    general: GeneralDeviceCapabilities | None = None
    llrp: LLRPCapabilities | None = None
    regulatory: RegulatoryCapabilities | None = None
    c1g2: C1G2LLRPCapabilities | None = None
    other: tuple[Parameter, ...] = ()
    TYPE: ClassVar[int] = GET_READER_CAPABILITIES_RESPONSE
    WIRE: ClassVar[Wire] = (
        Sub("status", LLRPStatus, "req"),
        Sub("general", GeneralDeviceCapabilities),
        Sub("llrp", LLRPCapabilities),
        Sub("regulatory", RegulatoryCapabilities),
        Sub("c1g2", C1G2LLRPCapabilities),
        Rest(),
    )


@dataclass(frozen=True, slots=True)
class GetReaderConfig(Message):
    """Spec order is AntennaID, RequestedData (sllurp packs them the other way round;
    harmless while it sends zeros)."""

    msg_id: int = 0
    antenna_id: int = 0
    requested: int = 0  # 0 all … 11 EventsAndReports
    gpi_port: int = 0
    gpo_port: int = 0
    other: tuple[Parameter, ...] = ()
    TYPE: ClassVar[int] = GET_READER_CONFIG
    WIRE: ClassVar[Wire] = (
        Field("antenna_id", "u16", "AntennaID"),
        Field("requested", "u8", "RequestedData"),
        Field("gpi_port", "u16", "GPIPortNum"),
        Field("gpo_port", "u16", "GPOPortNum"),
        Rest(),
    )


# What GET_READER_CONFIG_RESPONSE and SET_READER_CONFIG both carry, in their order.
_CONFIG: Wire = (
    Sub("event_spec", ReaderEventNotificationSpec),
    Sub("antennas", AntennaProperties, "many"),
    Sub("report_spec", ROReportSpec),
    Sub("access_report_spec", AccessReportSpec),
    Sub("keepalive", KeepaliveSpec),
    Sub("events_and_reports", EventsAndReports),
    Rest(),  # AntennaConfiguration, GPO/GPI, Custom: kept raw
)


@dataclass(frozen=True, slots=True)
class GetReaderConfigResponse(Message):
    msg_id: int = 0
    status: LLRPStatus = LLRPStatus()  # noqa: RUF009 (frozen, so one shared default is safe)
    identification: Identification | None = None
    antennas: tuple[AntennaProperties, ...] = ()
    event_spec: ReaderEventNotificationSpec | None = None
    report_spec: ROReportSpec | None = None
    access_report_spec: AccessReportSpec | None = None
    keepalive: KeepaliveSpec | None = None
    events_and_reports: EventsAndReports | None = None
    other: tuple[Parameter, ...] = ()
    TYPE: ClassVar[int] = GET_READER_CONFIG_RESPONSE
    WIRE: ClassVar[Wire] = (
        Sub("status", LLRPStatus, "req"),
        Sub("identification", Identification),
        Sub("antennas", AntennaProperties, "many"),  # here before the event spec
        *_CONFIG[:1],
        *_CONFIG[2:],
    )


@dataclass(frozen=True, slots=True)
class SetReaderConfig(Message):
    msg_id: int = 0
    reset: bool = False
    event_spec: ReaderEventNotificationSpec | None = None
    antennas: tuple[AntennaProperties, ...] = ()
    report_spec: ROReportSpec | None = None
    access_report_spec: AccessReportSpec | None = None
    keepalive: KeepaliveSpec | None = None
    events_and_reports: EventsAndReports | None = None
    other: tuple[Parameter, ...] = ()
    TYPE: ClassVar[int] = SET_READER_CONFIG
    WIRE: ClassVar[Wire] = (Flags("ResetToFactoryDefault", "u8", (("reset", 7),)), *_CONFIG)


@dataclass(frozen=True, slots=True)
class AddROSpec(Message):
    msg_id: int
    rospec: ROSpec
    TYPE: ClassVar[int] = ADD_ROSPEC
    WIRE: ClassVar[Wire] = (Sub("rospec", ROSpec, "req"),)


@dataclass(frozen=True, slots=True)
class ROAccessReport(Message):
    msg_id: int = 0
    tags: tuple[TagReportData, ...] = ()
    other: tuple[Parameter, ...] = ()
    TYPE: ClassVar[int] = RO_ACCESS_REPORT
    WIRE: ClassVar[Wire] = (Sub("tags", TagReportData, "many"), Rest())


@dataclass(frozen=True, slots=True)
class ReaderEventNotification(Message):
    msg_id: int
    data: ReaderEventNotificationData
    TYPE: ClassVar[int] = READER_EVENT_NOTIFICATION
    WIRE: ClassVar[Wire] = (Sub("data", ReaderEventNotificationData, "req"),)


@dataclass(frozen=True, slots=True)
class CustomMessage(Message):
    """The vendor and subtype are header fields, so this one writes its own header."""

    msg_id: int
    vendor: int
    subtype: int
    payload: bytes = b""
    TYPE: ClassVar[int] = CUSTOM_MESSAGE

    def body(self) -> bytes:
        return self.payload

    def encode(self) -> bytes:
        return (
            CUSTOM_HEADER.pack(
                (VERSION << 10) | CUSTOM_MESSAGE,
                CUSTOM_HEADER.size + len(self.payload),
                self.msg_id,
                self.vendor,
                self.subtype,
            )
            + self.payload
        )


MESSAGE_DECODERS: dict[int, Callable[[int, int, bytes], Message]] = {
    GET_READER_CAPABILITIES: GetReaderCapabilities.decode_body,
    GET_READER_CAPABILITIES_RESPONSE: GetReaderCapabilitiesResponse.decode_body,
    GET_READER_CONFIG: GetReaderConfig.decode_body,
    GET_READER_CONFIG_RESPONSE: GetReaderConfigResponse.decode_body,
    SET_READER_CONFIG: SetReaderConfig.decode_body,
    ADD_ROSPEC: AddROSpec.decode_body,
    RO_ACCESS_REPORT: ROAccessReport.decode_body,
    READER_EVENT_NOTIFICATION: ReaderEventNotification.decode_body,
}
for _t in (CLOSE_CONNECTION, KEEPALIVE, KEEPALIVE_ACK, GET_REPORT, ENABLE_EVENTS_AND_REPORTS):
    MESSAGE_DECODERS[_t] = Bare.decode_body
for _t in (*(RESPONSE_TO[t] for t in RESPONSE_TO if t not in (1, 2)), ERROR_MESSAGE):
    MESSAGE_DECODERS[_t] = StatusResponse.decode_body
for _t in (
    DELETE_ROSPEC,
    START_ROSPEC,
    STOP_ROSPEC,
    ENABLE_ROSPEC,
    DISABLE_ROSPEC,
    DELETE_ACCESSSPEC,
    ENABLE_ACCESSSPEC,
    DISABLE_ACCESSSPEC,
):
    MESSAGE_DECODERS[_t] = SpecCommand.decode_body
