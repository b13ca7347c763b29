"""LLRPStatus and its errors (spec 16.2.8), timestamps, and reader events (spec 16.2.7.6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from drivers.llrp_frames.constants import (
    M_DUPLICATE_PARAMETER,
    M_MISSING_PARAMETER,
    M_SUCCESS,
    FrameError,
)
from drivers.llrp_frames.wire import (
    Field,
    Parameter,
    Sub,
    Wire,
    encode_all,
    others,
    parse_params,
    register,
    tlv,
)


@register
@dataclass(frozen=True, slots=True)
class FieldError(Parameter):
    field_num: int
    error_code: int
    TYPE: ClassVar[int] = 288
    WIRE: ClassVar[Wire] = (
        Field("field_num", "u16", "FieldNum"),
        Field("error_code", "u16", "ErrorCode"),
    )


@register
@dataclass(frozen=True, slots=True)
class ParameterError(Parameter):
    parameter_type: int
    error_code: int
    field_error: FieldError | None = None
    parameter_error: ParameterError | None = None
    TYPE: ClassVar[int] = 289


# A ParameterError may nest one, so its table can only name the class once it exists.
ParameterError.WIRE = (
    Field("parameter_type", "u16", "ParameterType"),
    Field("error_code", "u16", "ErrorCode"),
    Sub("field_error", FieldError),
    Sub("parameter_error", ParameterError),
)


@register
@dataclass(frozen=True, slots=True)
class LLRPStatus(Parameter):
    code: int = M_SUCCESS
    description: str = ""
    field_error: FieldError | None = None
    parameter_error: ParameterError | None = None
    TYPE: ClassVar[int] = 287
    WIRE: ClassVar[Wire] = (
        Field("code", "u16", "StatusCode"),
        Field("description", "utf8v", "ErrorDescription"),
        Sub("field_error", FieldError),
        Sub("parameter_error", ParameterError),
    )

    @property
    def ok(self) -> bool:
        return self.code == M_SUCCESS


_MICROSECONDS: Wire = (Field("microseconds", "u64", "Microseconds"),)


@register
@dataclass(frozen=True, slots=True)
class UTCTimestamp(Parameter):
    microseconds: int
    TYPE: ClassVar[int] = 128
    WIRE: ClassVar[Wire] = _MICROSECONDS


@register
@dataclass(frozen=True, slots=True)
class Uptime(Parameter):
    microseconds: int
    TYPE: ClassVar[int] = 129
    WIRE: ClassVar[Wire] = _MICROSECONDS


# Reader events (spec 16.2.7.6)

CONNECTION_SUCCESS = 0
CONNECTION_FAILED_READER_INITIATED_EXISTS = 1
CONNECTION_FAILED_CLIENT_INITIATED_EXISTS = 2
CONNECTION_FAILED_OTHER = 3
CONNECTION_ANOTHER_ATTEMPTED = 4


@register
@dataclass(frozen=True, slots=True)
class ConnectionAttemptEvent(Parameter):
    status: int
    TYPE: ClassVar[int] = 256
    WIRE: ClassVar[Wire] = (Field("status", "u16", "Status"),)


@register
@dataclass(frozen=True, slots=True)
class ConnectionCloseEvent(Parameter):
    TYPE: ClassVar[int] = 257


@register
@dataclass(frozen=True, slots=True)
class ROSpecEvent(Parameter):
    event_type: int  # 0 start, 1 end, 2 preempted
    rospec_id: int
    preempting_rospec_id: int = 0
    TYPE: ClassVar[int] = 249
    WIRE: ClassVar[Wire] = (
        Field("event_type", "u8", "EventType"),
        Field("rospec_id", "u32", "ROSpecID"),
        Field("preempting_rospec_id", "u32", "PreemptingROSpecID"),
    )


@register
@dataclass(frozen=True, slots=True)
class ReaderEventNotificationData(Parameter):
    """Its timestamp is a choice of two types, which the field table cannot say: coded here."""

    timestamp: UTCTimestamp | Uptime
    events: tuple[Parameter, ...] = ()
    TYPE: ClassVar[int] = 246

    def encode(self) -> bytes:
        return tlv(self.TYPE, self.timestamp.encode() + encode_all(self.events))

    @classmethod
    def decode_value(cls, value: bytes) -> ReaderEventNotificationData:
        where = "ReaderEventNotificationData"
        ps = parse_params(value, where)
        stamps = [p for p in ps if isinstance(p, UTCTimestamp | Uptime)]
        if len(stamps) != 1:
            raise FrameError(
                f"{where}: needs exactly one UTCTimestamp or Uptime, has {len(stamps)}",
                status=M_MISSING_PARAMETER if not stamps else M_DUPLICATE_PARAMETER,
            )
        return cls(stamps[0], others(ps, UTCTimestamp, Uptime))

    @property
    def connection_attempt(self) -> int | None:
        for event in self.events:
            if isinstance(event, ConnectionAttemptEvent):
                return event.status
        return None
