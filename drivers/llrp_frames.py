"""LLRP 1.0.1 binary codec for the reader emulator (EPCglobal LLRP 1.0.1, 2007-08-13).

Written from the spec's binary encoding (section 15) and checked against the
LTK binary schema, NOT built on sllurp's encoder: the emulator is the
independent peer that tests sllurp, so sharing its codec would let one bug
hide another. Where sllurp disagrees with the spec it is noted beside the
field (GET_READER_CONFIG's field order, GPITriggerValue's type number).

Layers, each total (any bytes give a value or a ``FrameError``, never another
exception):

- frames: header = 3 reserved bits, 3-bit version (1), 10-bit type, u32
  length (header included), u32 message id; CUSTOM_MESSAGE (1023) adds a u32
  vendor and a u8 subtype. ``split_frames`` cuts a byte stream into frames.
- parameters: TV (bit 7 set, 7-bit type, fixed length per type) and TLV
  (6 reserved bits, 10-bit type, u16 length with header). Types this module
  knows decode to typed dataclasses; other well-formed ones stay raw
  (``Tlv``, ``Tv``, ``Custom``) in an ``other`` tuple, so nothing is dropped.
- messages: typed dataclasses for what the emulator reads and writes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from agent.errors import DriverError

VERSION = 1
HEADER = struct.Struct(">HII")
CUSTOM_HEADER = struct.Struct(">HIIIB")
TYPE_CUSTOM = 1023
MAX_FRAME = 16 * 1024 * 1024  # a reader's frame above this is a broken length field, not data

# LLRPStatus codes (spec 14.2.2)
M_SUCCESS = 0
M_PARAMETER_ERROR = 100
M_FIELD_ERROR = 101
M_UNEXPECTED_PARAMETER = 102
M_MISSING_PARAMETER = 103
M_DUPLICATE_PARAMETER = 104
M_OVERFLOW_PARAMETER = 105
M_OVERFLOW_FIELD = 106
M_UNKNOWN_PARAMETER = 107
M_UNKNOWN_FIELD = 108
M_UNSUPPORTED_MESSAGE = 109
M_UNSUPPORTED_VERSION = 110
M_UNSUPPORTED_PARAMETER = 111
A_INVALID = 300
A_OUT_OF_RANGE = 301
R_DEVICE_ERROR = 401

# Message types (spec 16.1)
GET_READER_CAPABILITIES = 1
GET_READER_CONFIG = 2
SET_READER_CONFIG = 3
CLOSE_CONNECTION_RESPONSE = 4
GET_READER_CAPABILITIES_RESPONSE = 11
GET_READER_CONFIG_RESPONSE = 12
SET_READER_CONFIG_RESPONSE = 13
CLOSE_CONNECTION = 14
ADD_ROSPEC = 20
DELETE_ROSPEC = 21
START_ROSPEC = 22
STOP_ROSPEC = 23
ENABLE_ROSPEC = 24
DISABLE_ROSPEC = 25
GET_ROSPECS = 26
ADD_ROSPEC_RESPONSE = 30
DELETE_ROSPEC_RESPONSE = 31
START_ROSPEC_RESPONSE = 32
STOP_ROSPEC_RESPONSE = 33
ENABLE_ROSPEC_RESPONSE = 34
DISABLE_ROSPEC_RESPONSE = 35
GET_ROSPECS_RESPONSE = 36
ADD_ACCESSSPEC = 40
DELETE_ACCESSSPEC = 41
ENABLE_ACCESSSPEC = 42
DISABLE_ACCESSSPEC = 43
GET_ACCESSSPECS = 44
CLIENT_REQUEST_OP = 45
CLIENT_REQUEST_OP_RESPONSE = 46
ADD_ACCESSSPEC_RESPONSE = 50
DELETE_ACCESSSPEC_RESPONSE = 51
ENABLE_ACCESSSPEC_RESPONSE = 52
DISABLE_ACCESSSPEC_RESPONSE = 53
GET_ACCESSSPECS_RESPONSE = 54
GET_REPORT = 60
RO_ACCESS_REPORT = 61
KEEPALIVE = 62
READER_EVENT_NOTIFICATION = 63
ENABLE_EVENTS_AND_REPORTS = 64
KEEPALIVE_ACK = 72
ERROR_MESSAGE = 100
CUSTOM_MESSAGE = TYPE_CUSTOM

MESSAGE_NAMES: dict[int, str] = {
    value: name
    for name, value in dict(globals()).items()
    if name.isupper()
    and isinstance(value, int)
    and name not in {"VERSION", "TYPE_CUSTOM", "MAX_FRAME"}
    and not name.startswith(("M_", "A_", "R_"))
}
MESSAGE_NAMES[CUSTOM_MESSAGE] = "CUSTOM_MESSAGE"

# Response type for each request type (ERROR_MESSAGE answers what has none)
RESPONSE_TO: dict[int, int] = {
    GET_READER_CAPABILITIES: GET_READER_CAPABILITIES_RESPONSE,
    GET_READER_CONFIG: GET_READER_CONFIG_RESPONSE,
    SET_READER_CONFIG: SET_READER_CONFIG_RESPONSE,
    CLOSE_CONNECTION: CLOSE_CONNECTION_RESPONSE,
    ADD_ROSPEC: ADD_ROSPEC_RESPONSE,
    DELETE_ROSPEC: DELETE_ROSPEC_RESPONSE,
    START_ROSPEC: START_ROSPEC_RESPONSE,
    STOP_ROSPEC: STOP_ROSPEC_RESPONSE,
    ENABLE_ROSPEC: ENABLE_ROSPEC_RESPONSE,
    DISABLE_ROSPEC: DISABLE_ROSPEC_RESPONSE,
    ADD_ACCESSSPEC: ADD_ACCESSSPEC_RESPONSE,
    DELETE_ACCESSSPEC: DELETE_ACCESSSPEC_RESPONSE,
    ENABLE_ACCESSSPEC: ENABLE_ACCESSSPEC_RESPONSE,
    DISABLE_ACCESSSPEC: DISABLE_ACCESSSPEC_RESPONSE,
}

# TV parameter types and their value sizes (spec 16.2.7.3 and 16.3.1.5)
TV_SIZES: dict[int, int] = {
    1: 2,  # AntennaID
    2: 8,  # FirstSeenTimestampUTC (µs)
    3: 8,  # FirstSeenTimestampUptime
    4: 8,  # LastSeenTimestampUTC
    5: 8,  # LastSeenTimestampUptime
    6: 1,  # PeakRSSI (s8, dBm)
    7: 2,  # ChannelIndex
    8: 2,  # TagSeenCount
    9: 4,  # ROSpecID
    10: 2,  # InventoryParameterSpecID
    11: 2,  # C1G2_CRC
    12: 2,  # C1G2_PC
    13: 12,  # EPC-96
    14: 2,  # SpecIndex
    15: 2,  # ClientRequestOpSpecResult
    16: 4,  # AccessSpecID
    17: 2,  # OpSpecID
    18: 4,  # C1G2SingulationDetails
}

# Impinj's IANA enterprise number and its extension subtypes (Octane LLRP guide)
VENDOR_IMPINJ = 25882
IMPINJ_ENABLE_EXTENSIONS = 21
IMPINJ_ENABLE_EXTENSIONS_RESPONSE = 22


class FrameError(DriverError):
    """Bytes that are not a valid LLRP frame; ``status`` is the LLRPStatus code to answer with."""

    def __init__(
        self,
        message: str,
        *,
        status: int = M_PARAMETER_ERROR,
        msg_type: int | None = None,
        msg_id: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.msg_type = msg_type
        self.msg_id = msg_id


# --- low-level reading -------------------------------------------------------------------------

_U8 = struct.Struct(">B")
_S8 = struct.Struct(">b")
_U16 = struct.Struct(">H")
_S16 = struct.Struct(">h")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_TLV = struct.Struct(">HH")


class _Cursor:
    """Reads fields off a parameter's value; every short read is a FrameError naming the field."""

    __slots__ = ("data", "pos", "where")

    def __init__(self, data: bytes, where: str) -> None:
        self.data = data
        self.pos = 0
        self.where = where

    def take(self, n: int, what: str) -> bytes:
        if n > len(self.data) - self.pos:
            raise FrameError(
                f"{self.where}: truncated at {what} (needs {n} bytes, "
                f"{len(self.data) - self.pos} left)",
                status=M_PARAMETER_ERROR,
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self, what: str) -> int:
        return int(_U8.unpack(self.take(1, what))[0])

    def s8(self, what: str) -> int:
        return int(_S8.unpack(self.take(1, what))[0])

    def u16(self, what: str) -> int:
        return int(_U16.unpack(self.take(2, what))[0])

    def s16(self, what: str) -> int:
        return int(_S16.unpack(self.take(2, what))[0])

    def u32(self, what: str) -> int:
        return int(_U32.unpack(self.take(4, what))[0])

    def u64(self, what: str) -> int:
        return int(_U64.unpack(self.take(8, what))[0])

    def utf8v(self, what: str) -> str:
        raw = self.take(self.u16(what), what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FrameError(f"{self.where}: {what} is not UTF-8 ({exc.reason})") from exc

    def u8v(self, what: str) -> tuple[int, ...]:
        return tuple(self.take(self.u16(what), what))

    def u16v(self, what: str) -> tuple[int, ...]:
        n = self.u16(what)
        raw = self.take(2 * n, what)
        return tuple(struct.unpack(f">{n}H", raw))

    def u32v(self, what: str) -> tuple[int, ...]:
        n = self.u16(what)
        raw = self.take(4 * n, what)
        return tuple(struct.unpack(f">{n}I", raw))

    def rest(self) -> bytes:
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out

    def params(self) -> tuple[Parameter, ...]:
        return parse_params(self.rest(), self.where)

    def end(self) -> None:
        if self.pos != len(self.data):
            raise FrameError(f"{self.where}: {len(self.data) - self.pos} unexpected trailing bytes")


def _utf8v(text: str) -> bytes:
    raw = text.encode("utf-8")
    return _U16.pack(len(raw)) + raw


def _u16v(values: Sequence[int]) -> bytes:
    return _U16.pack(len(values)) + struct.pack(f">{len(values)}H", *values)


def _u32v(values: Sequence[int]) -> bytes:
    return _U16.pack(len(values)) + struct.pack(f">{len(values)}I", *values)


def _tlv(ptype: int, body: bytes) -> bytes:
    if len(body) > 0xFFFF - 4:
        raise FrameError(f"parameter type {ptype}: {len(body)} bytes do not fit a TLV")
    return _TLV.pack(ptype, 4 + len(body)) + body


def _encode_all(params: Iterable[Parameter | None]) -> bytes:
    return b"".join(p.encode() for p in params if p is not None)


# --- parameters ----------------------------------------------------------------------------------


class Parameter:
    """A decoded LLRP parameter: knows how to write itself back, header included."""

    __slots__ = ()
    TYPE: ClassVar[int] = -1

    def encode(self) -> bytes:
        raise NotImplementedError


P = TypeVar("P", bound=Parameter)


@dataclass(frozen=True, slots=True)
class Tlv(Parameter):
    """A TLV parameter this codec keeps as bytes (well-formed, not interpreted)."""

    type: int
    value: bytes = b""

    def encode(self) -> bytes:
        return _tlv(self.type, self.value)


@dataclass(frozen=True, slots=True)
class Tv(Parameter):
    """A TV parameter outside TagReportData's typed fields."""

    type: int
    value: bytes

    def encode(self) -> bytes:
        if TV_SIZES.get(self.type) != len(self.value):
            raise FrameError(
                f"TV parameter {self.type}: value must be {TV_SIZES.get(self.type)} bytes"
            )
        return bytes([0x80 | self.type]) + self.value


@dataclass(frozen=True, slots=True)
class Custom(Parameter):
    """A vendor extension parameter (type 1023): vendor PEN, subtype, payload."""

    vendor: int
    subtype: int
    payload: bytes = b""
    TYPE: ClassVar[int] = TYPE_CUSTOM

    def encode(self) -> bytes:
        return _tlv(TYPE_CUSTOM, struct.pack(">II", self.vendor, self.subtype) + self.payload)


_DECODERS: dict[int, Callable[[bytes], Parameter]] = {}
_PT = TypeVar("_PT", bound=type[Parameter])


def _register(cls: _PT) -> _PT:
    decode = getattr(cls, "decode_value", None)
    assert decode is not None, cls
    _DECODERS[cls.TYPE] = decode
    return cls


def parse_params(data: bytes, where: str = "parameters") -> tuple[Parameter, ...]:
    """Split a run of parameters; known types come back typed, the rest raw."""
    out: list[Parameter] = []
    pos = 0
    size = len(data)
    while pos < size:
        first = data[pos]
        if first & 0x80:
            ptype = first & 0x7F
            n = TV_SIZES.get(ptype)
            if n is None:
                raise FrameError(
                    f"{where}: unknown TV parameter type {ptype} (its length is unknown)",
                    status=M_UNKNOWN_PARAMETER,
                )
            if pos + 1 + n > size:
                raise FrameError(f"{where}: TV parameter {ptype} truncated")
            out.append(Tv(ptype, data[pos + 1 : pos + 1 + n]))
            pos += 1 + n
            continue
        if pos + 4 > size:
            raise FrameError(f"{where}: truncated parameter header ({size - pos} bytes)")
        word, length = _TLV.unpack_from(data, pos)
        ptype = word & 0x03FF
        if word >> 10:
            raise FrameError(f"{where}: parameter {ptype} has reserved bits set")
        if length < 4:
            raise FrameError(f"{where}: parameter {ptype} length {length} is below its header")
        if pos + length > size:
            raise FrameError(
                f"{where}: parameter {ptype} length {length} overruns its container "
                f"({size - pos} bytes left)"
            )
        value = data[pos + 4 : pos + length]
        pos += length
        if ptype == TYPE_CUSTOM:
            if len(value) < 8:
                raise FrameError(f"{where}: custom parameter shorter than vendor and subtype")
            vendor, subtype = struct.unpack_from(">II", value)
            out.append(Custom(vendor, subtype, value[8:]))
            continue
        if ptype < 128:
            raise FrameError(f"{where}: TLV parameter type {ptype} is in the TV range")
        decode = _DECODERS.get(ptype)
        out.append(decode(value) if decode else Tlv(ptype, value))
    return tuple(out)


def _one(params: Sequence[Parameter], cls: type[P], where: str, required: bool = False) -> P | None:
    found = [p for p in params if isinstance(p, cls)]
    if len(found) > 1:
        raise FrameError(f"{where}: more than one {cls.__name__}", status=M_DUPLICATE_PARAMETER)
    if required and not found:
        raise FrameError(f"{where}: missing {cls.__name__}", status=M_MISSING_PARAMETER)
    return found[0] if found else None


def _req(params: Sequence[Parameter], cls: type[P], where: str) -> P:
    found = _one(params, cls, where, required=True)
    assert found is not None
    return found


def _many(params: Sequence[Parameter], cls: type[P]) -> tuple[P, ...]:
    return tuple(p for p in params if isinstance(p, cls))


def _rest(params: Sequence[Parameter], *known: type[Parameter]) -> tuple[Parameter, ...]:
    return tuple(p for p in params if not isinstance(p, known))


@_register
@dataclass(frozen=True, slots=True)
class FieldError(Parameter):
    field_num: int
    error_code: int
    TYPE: ClassVar[int] = 288

    def encode(self) -> bytes:
        return _tlv(self.TYPE, struct.pack(">HH", self.field_num, self.error_code))

    @classmethod
    def decode_value(cls, value: bytes) -> FieldError:
        c = _Cursor(value, "FieldError")
        out = cls(c.u16("FieldNum"), c.u16("ErrorCode"))
        c.end()
        return out


@_register
@dataclass(frozen=True, slots=True)
class ParameterError(Parameter):
    parameter_type: int
    error_code: int
    field_error: FieldError | None = None
    parameter_error: ParameterError | None = None
    TYPE: ClassVar[int] = 289

    def encode(self) -> bytes:
        body = struct.pack(">HH", self.parameter_type, self.error_code)
        return _tlv(self.TYPE, body + _encode_all((self.field_error, self.parameter_error)))

    @classmethod
    def decode_value(cls, value: bytes) -> ParameterError:
        c = _Cursor(value, "ParameterError")
        ptype, code = c.u16("ParameterType"), c.u16("ErrorCode")
        ps = c.params()
        _only(ps, "ParameterError", FieldError, ParameterError)
        return cls(ptype, code, _one(ps, FieldError, c.where), _one(ps, ParameterError, c.where))


def _only(params: Sequence[Parameter], where: str, *allowed: type[Parameter]) -> None:
    for p in params:
        if not isinstance(p, allowed):
            raise FrameError(
                f"{where}: unexpected parameter {_pname(p)}", status=M_UNEXPECTED_PARAMETER
            )


def _pname(p: Parameter) -> str:
    if isinstance(p, Tlv | Tv):
        return f"type {p.type}"
    return type(p).__name__


@_register
@dataclass(frozen=True, slots=True)
class LLRPStatus(Parameter):
    code: int = M_SUCCESS
    description: str = ""
    field_error: FieldError | None = None
    parameter_error: ParameterError | None = None
    TYPE: ClassVar[int] = 287

    @property
    def ok(self) -> bool:
        return self.code == M_SUCCESS

    def encode(self) -> bytes:
        body = _U16.pack(self.code) + _utf8v(self.description)
        return _tlv(self.TYPE, body + _encode_all((self.field_error, self.parameter_error)))

    @classmethod
    def decode_value(cls, value: bytes) -> LLRPStatus:
        c = _Cursor(value, "LLRPStatus")
        code, text = c.u16("StatusCode"), c.utf8v("ErrorDescription")
        ps = c.params()
        _only(ps, "LLRPStatus", FieldError, ParameterError)
        return cls(code, text, _one(ps, FieldError, c.where), _one(ps, ParameterError, c.where))


@_register
@dataclass(frozen=True, slots=True)
class UTCTimestamp(Parameter):
    microseconds: int
    TYPE: ClassVar[int] = 128

    def encode(self) -> bytes:
        return _tlv(self.TYPE, _U64.pack(self.microseconds))

    @classmethod
    def decode_value(cls, value: bytes) -> UTCTimestamp:
        c = _Cursor(value, "UTCTimestamp")
        out = cls(c.u64("Microseconds"))
        c.end()
        return out


@_register
@dataclass(frozen=True, slots=True)
class Uptime(Parameter):
    microseconds: int
    TYPE: ClassVar[int] = 129

    def encode(self) -> bytes:
        return _tlv(self.TYPE, _U64.pack(self.microseconds))

    @classmethod
    def decode_value(cls, value: bytes) -> Uptime:
        c = _Cursor(value, "Uptime")
        out = cls(c.u64("Microseconds"))
        c.end()
        return out


# Reader events (spec 16.2.7.6)

CONNECTION_SUCCESS = 0
CONNECTION_FAILED_READER_INITIATED_EXISTS = 1
CONNECTION_FAILED_CLIENT_INITIATED_EXISTS = 2
CONNECTION_FAILED_OTHER = 3
CONNECTION_ANOTHER_ATTEMPTED = 4


@_register
@dataclass(frozen=True, slots=True)
class ConnectionAttemptEvent(Parameter):
    status: int
    TYPE: ClassVar[int] = 256

    def encode(self) -> bytes:
        return _tlv(self.TYPE, _U16.pack(self.status))

    @classmethod
    def decode_value(cls, value: bytes) -> ConnectionAttemptEvent:
        c = _Cursor(value, "ConnectionAttemptEvent")
        out = cls(c.u16("Status"))
        c.end()
        return out


@_register
@dataclass(frozen=True, slots=True)
class ConnectionCloseEvent(Parameter):
    TYPE: ClassVar[int] = 257

    def encode(self) -> bytes:
        return _tlv(self.TYPE, b"")

    @classmethod
    def decode_value(cls, value: bytes) -> ConnectionCloseEvent:
        _Cursor(value, "ConnectionCloseEvent").end()
        return cls()


@_register
@dataclass(frozen=True, slots=True)
class ROSpecEvent(Parameter):
    event_type: int  # 0 start, 1 end, 2 preempted
    rospec_id: int
    preempting_rospec_id: int = 0
    TYPE: ClassVar[int] = 249

    def encode(self) -> bytes:
        return _tlv(
            self.TYPE,
            struct.pack(">BII", self.event_type, self.rospec_id, self.preempting_rospec_id),
        )

    @classmethod
    def decode_value(cls, value: bytes) -> ROSpecEvent:
        c = _Cursor(value, "ROSpecEvent")
        out = cls(c.u8("EventType"), c.u32("ROSpecID"), c.u32("PreemptingROSpecID"))
        c.end()
        return out


@_register
@dataclass(frozen=True, slots=True)
class ReaderEventNotificationData(Parameter):
    timestamp: UTCTimestamp | Uptime
    events: tuple[Parameter, ...] = ()
    TYPE: ClassVar[int] = 246

    def encode(self) -> bytes:
        return _tlv(self.TYPE, self.timestamp.encode() + _encode_all(self.events))

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
        return cls(stamps[0], _rest(ps, UTCTimestamp, Uptime))

    @property
    def connection_attempt(self) -> int | None:
        for event in self.events:
            if isinstance(event, ConnectionAttemptEvent):
                return event.status
        return None


# Capabilities (spec 16.2.3)


@_register
@dataclass(frozen=True, slots=True)
class ReceiveSensitivityTableEntry(Parameter):
    index: int
    value: int  # dB, s16
    TYPE: ClassVar[int] = 139

    def encode(self) -> bytes:
        return _tlv(self.TYPE, struct.pack(">Hh", self.index, self.value))

    @classmethod
    def decode_value(cls, value: bytes) -> ReceiveSensitivityTableEntry:
        c = _Cursor(value, "ReceiveSensitivityTableEntry")
        out = cls(c.u16("Index"), c.s16("ReceiveSensitivityValue"))
        c.end()
        return out


@_register
@dataclass(frozen=True, slots=True)
class PerAntennaAirProtocol(Parameter):
    antenna_id: int
    protocols: tuple[int, ...] = (1,)  # 1 = EPCGlobal Class 1 Gen 2
    TYPE: ClassVar[int] = 140

    def encode(self) -> bytes:
        return _tlv(
            self.TYPE,
            _U16.pack(self.antenna_id) + _U16.pack(len(self.protocols)) + bytes(self.protocols),
        )

    @classmethod
    def decode_value(cls, value: bytes) -> PerAntennaAirProtocol:
        c = _Cursor(value, "PerAntennaAirProtocol")
        out = cls(c.u16("AntennaID"), c.u8v("ProtocolID"))
        c.end()
        return out


@_register
@dataclass(frozen=True, slots=True)
class GPIOCapabilities(Parameter):
    num_gpis: int = 0
    num_gpos: int = 0
    TYPE: ClassVar[int] = 141

    def encode(self) -> bytes:
        return _tlv(self.TYPE, struct.pack(">HH", self.num_gpis, self.num_gpos))

    @classmethod
    def decode_value(cls, value: bytes) -> GPIOCapabilities:
        c = _Cursor(value, "GPIOCapabilities")
        out = cls(c.u16("NumGPIs"), c.u16("NumGPOs"))
        c.end()
        return out


@_register
@dataclass(frozen=True, slots=True)
class GeneralDeviceCapabilities(Parameter):
    max_antennas: int
    firmware: str
    manufacturer: int = 0  # IANA private enterprise number
    model: int = 0
    can_set_antenna_properties: bool = False
    has_utc_clock: bool = True
    sensitivity: tuple[ReceiveSensitivityTableEntry, ...] = (ReceiveSensitivityTableEntry(1, 0),)
    gpio: GPIOCapabilities = GPIOCapabilities()
    air_protocols: tuple[PerAntennaAirProtocol, ...] = ()
    other: tuple[Parameter, ...] = ()
    TYPE: ClassVar[int] = 137

    def encode(self) -> bytes:
        flags = (self.can_set_antenna_properties << 15) | (self.has_utc_clock << 14)
        body = struct.pack(">HHII", self.max_antennas, flags, self.manufacturer, self.model)
        body += _utf8v(self.firmware)
        body += _encode_all((*self.sensitivity, self.gpio, *self.air_protocols, *self.other))
        return _tlv(self.TYPE, body)

    @classmethod
    def decode_value(cls, value: bytes) -> GeneralDeviceCapabilities:
        c = _Cursor(value, "GeneralDeviceCapabilities")
        max_antennas, flags = c.u16("MaxNumberOfAntennaSupported"), c.u16("flags")
        manufacturer, model = c.u32("DeviceManufacturerName"), c.u32("ModelName")
        firmware = c.utf8v("ReaderFirmwareVersion")
        ps = c.params()
        return cls(
            max_antennas,
            firmware,
            manufacturer,
            model,
            bool(flags & 0x8000),
            bool(flags & 0x4000),
            _many(ps, ReceiveSensitivityTableEntry),
            _req(ps, GPIOCapabilities, c.where),
            _many(ps, PerAntennaAirProtocol),
            _rest(ps, ReceiveSensitivityTableEntry, GPIOCapabilities, PerAntennaAirProtocol),
        )


@_register
@dataclass(frozen=True, slots=True)
class LLRPCapabilities(Parameter):
    can_do_rf_survey: bool = False
    can_report_buffer_fill_warning: bool = False
    supports_client_request_opspec: bool = False
    can_do_state_aware_singulation: bool = False
    supports_event_and_report_holding: bool = False
    max_priority_levels: int = 1
    client_request_opspec_timeout: int = 0
    max_rospecs: int = 1
    max_specs_per_rospec: int = 1
    max_inventory_parameter_specs_per_aispec: int = 1
    max_access_specs: int = 0
    max_opspecs_per_access_spec: int = 0
    TYPE: ClassVar[int] = 142
    _S: ClassVar[struct.Struct] = struct.Struct(">BBHIIIII")

    def encode(self) -> bytes:
        flags = (
            self.can_do_rf_survey << 7
            | self.can_report_buffer_fill_warning << 6
            | self.supports_client_request_opspec << 5
            | self.can_do_state_aware_singulation << 4
            | self.supports_event_and_report_holding << 3
        )
        return _tlv(
            self.TYPE,
            self._S.pack(
                flags,
                self.max_priority_levels,
                self.client_request_opspec_timeout,
                self.max_rospecs,
                self.max_specs_per_rospec,
                self.max_inventory_parameter_specs_per_aispec,
                self.max_access_specs,
                self.max_opspecs_per_access_spec,
            ),
        )

    @classmethod
    def decode_value(cls, value: bytes) -> LLRPCapabilities:
        c = _Cursor(value, "LLRPCapabilities")
        flags, prio, timeout, r, s, i, a, o = cls._S.unpack(c.take(cls._S.size, "fields"))
        c.end()
        return cls(
            bool(flags & 0x80),
            bool(flags & 0x40),
            bool(flags & 0x20),
            bool(flags & 0x10),
            bool(flags & 0x08),
            prio,
            timeout,
            r,
            s,
            i,
            a,
            o,
        )


@_register
@dataclass(frozen=True, slots=True)
class TransmitPowerLevelTableEntry(Parameter):
    index: int
    value: int  # dBm × 100, s16
    TYPE: ClassVar[int] = 145

    def encode(self) -> bytes:
        return _tlv(self.TYPE, struct.pack(">Hh", self.index, self.value))

    @classmethod
    def decode_value(cls, value: bytes) -> TransmitPowerLevelTableEntry:
        c = _Cursor(value, "TransmitPowerLevelTableEntry")
        out = cls(c.u16("Index"), c.s16("TransmitPowerValue"))
        c.end()
        return out


@_register
@dataclass(frozen=True, slots=True)
class FrequencyHopTable(Parameter):
    hop_table_id: int
    frequencies_khz: tuple[int, ...]
    TYPE: ClassVar[int] = 147

    def encode(self) -> bytes:
        return _tlv(self.TYPE, bytes([self.hop_table_id, 0]) + _u32v(self.frequencies_khz))

    @classmethod
    def decode_value(cls, value: bytes) -> FrequencyHopTable:
        c = _Cursor(value, "FrequencyHopTable")
        table, _reserved = c.u8("HopTableID"), c.u8("Reserved")
        out = cls(table, c.u32v("Frequency"))
        c.end()
        return out


@_register
@dataclass(frozen=True, slots=True)
class FrequencyInformation(Parameter):
    hopping: bool
    hop_tables: tuple[FrequencyHopTable, ...] = ()
    other: tuple[Parameter, ...] = ()  # FixedFrequencyTable kept raw
    TYPE: ClassVar[int] = 146

    def encode(self) -> bytes:
        return _tlv(
            self.TYPE, bytes([self.hopping << 7]) + _encode_all((*self.hop_tables, *self.other))
        )

    @classmethod
    def decode_value(cls, value: bytes) -> FrequencyInformation:
        c = _Cursor(value, "FrequencyInformation")
        hopping = bool(c.u8("Hopping") & 0x80)
        ps = c.params()
        return cls(hopping, _many(ps, FrequencyHopTable), _rest(ps, FrequencyHopTable))


@_register
@dataclass(frozen=True, slots=True)
class UHFC1G2RFModeTableEntry(Parameter):
    mode_id: int
    dr: int = 1  # 0 = 8, 1 = 64/3
    epc_hag_conformance: bool = False
    modulation: int = 0  # M: 0 FM0, 1 M2, 2 M4, 3 M8
    forward_link_modulation: int = 2  # 0 PR-ASK, 1 SSB-ASK, 2 DSB-ASK
    spectral_mask: int = 2  # 0 unknown, 1 single, 2 multi, 3 dense
    bdr_bps: int = 640_000
    pie: int = 1500  # ×1000
    min_tari_ns: int = 6250
    max_tari_ns: int = 6250
    step_tari_ns: int = 0
    TYPE: ClassVar[int] = 329
    _S: ClassVar[struct.Struct] = struct.Struct(">IBBBBIIIII")

    def encode(self) -> bytes:
        flags = (self.dr << 7) | (self.epc_hag_conformance << 6)
        return _tlv(
            self.TYPE,
            self._S.pack(
                self.mode_id,
                flags,
                self.modulation,
                self.forward_link_modulation,
                self.spectral_mask,
                self.bdr_bps,
                self.pie,
                self.min_tari_ns,
                self.max_tari_ns,
                self.step_tari_ns,
            ),
        )

    @classmethod
    def decode_value(cls, value: bytes) -> UHFC1G2RFModeTableEntry:
        c = _Cursor(value, "UHFC1G2RFModeTableEntry")
        mode, flags, m, flm, mask, bdr, pie, mn, mx, st = cls._S.unpack(
            c.take(cls._S.size, "fields")
        )
        c.end()
        return cls(mode, flags >> 7, bool(flags & 0x40), m, flm, mask, bdr, pie, mn, mx, st)


@_register
@dataclass(frozen=True, slots=True)
class UHFC1G2RFModeTable(Parameter):
    entries: tuple[UHFC1G2RFModeTableEntry, ...]
    TYPE: ClassVar[int] = 328

    def encode(self) -> bytes:
        return _tlv(self.TYPE, _encode_all(self.entries))

    @classmethod
    def decode_value(cls, value: bytes) -> UHFC1G2RFModeTable:
        ps = parse_params(value, "UHFC1G2RFModeTable")
        _only(ps, "UHFC1G2RFModeTable", UHFC1G2RFModeTableEntry)
        return cls(_many(ps, UHFC1G2RFModeTableEntry))


@_register
@dataclass(frozen=True, slots=True)
class UHFBandCapabilities(Parameter):
    power_levels: tuple[TransmitPowerLevelTableEntry, ...]
    frequency: FrequencyInformation
    mode_table: UHFC1G2RFModeTable
    other: tuple[Parameter, ...] = ()
    TYPE: ClassVar[int] = 144

    def encode(self) -> bytes:
        return _tlv(
            self.TYPE,
            _encode_all((*self.power_levels, self.frequency, self.mode_table, *self.other)),
        )

    @classmethod
    def decode_value(cls, value: bytes) -> UHFBandCapabilities:
        where = "UHFBandCapabilities"
        ps = parse_params(value, where)
        return cls(
            _many(ps, TransmitPowerLevelTableEntry),
            _req(ps, FrequencyInformation, where),
            _req(ps, UHFC1G2RFModeTable, where),
            _rest(ps, TransmitPowerLevelTableEntry, FrequencyInformation, UHFC1G2RFModeTable),
        )


@_register
@dataclass(frozen=True, slots=True)
class RegulatoryCapabilities(Parameter):
    country_code: int  # ISO 3166 numeric
    communications_standard: int  # 1 = US FCC Part 15, 2 = ETSI 302 208
    uhf_band: UHFBandCapabilities | None = None
    other: tuple[Parameter, ...] = ()
    TYPE: ClassVar[int] = 143

    def encode(self) -> bytes:
        body = struct.pack(">HH", self.country_code, self.communications_standard)
        return _tlv(self.TYPE, body + _encode_all((self.uhf_band, *self.other)))

    @classmethod
    def decode_value(cls, value: bytes) -> RegulatoryCapabilities:
        c = _Cursor(value, "RegulatoryCapabilities")
        country, standard = c.u16("CountryCode"), c.u16("CommunicationsStandard")
        ps = c.params()
        return cls(
            country,
            standard,
            _one(ps, UHFBandCapabilities, c.where),
            _rest(ps, UHFBandCapabilities),
        )


@_register
@dataclass(frozen=True, slots=True)
class C1G2LLRPCapabilities(Parameter):
    """The AirProtocolLLRPCapabilities choice for Gen2 (the choice itself has no type number)."""

    can_block_erase: bool = False
    can_block_write: bool = False
    max_select_filters_per_query: int = 2
    TYPE: ClassVar[int] = 327

    def encode(self) -> bytes:
        flags = (self.can_block_erase << 7) | (self.can_block_write << 6)
        return _tlv(self.TYPE, struct.pack(">BH", flags, self.max_select_filters_per_query))

    @classmethod
    def decode_value(cls, value: bytes) -> C1G2LLRPCapabilities:
        c = _Cursor(value, "C1G2LLRPCapabilities")
        flags, n = c.u8("flags"), c.u16("MaxNumSelectFiltersPerQuery")
        c.end()
        return cls(bool(flags & 0x80), bool(flags & 0x40), n)


# Reader configuration (spec 16.2.6)


@_register
@dataclass(frozen=True, slots=True)
class KeepaliveSpec(Parameter):
    trigger: int = 0  # 0 Null, 1 Periodic
    interval_ms: int = 0
    TYPE: ClassVar[int] = 220

    def encode(self) -> bytes:
        return _tlv(self.TYPE, struct.pack(">BI", self.trigger, self.interval_ms))

    @classmethod
    def decode_value(cls, value: bytes) -> KeepaliveSpec:
        c = _Cursor(value, "KeepaliveSpec")
        out = cls(c.u8("KeepaliveTriggerType"), c.u32("PeriodicTriggerValue"))
        c.end()
        return out


@_register
@dataclass(frozen=True, slots=True)
class EventNotificationState(Parameter):
    event_type: int  # 0 Hopping … 2 ROSpec … 8 Antenna
    enabled: bool
    TYPE: ClassVar[int] = 245

    def encode(self) -> bytes:
        return _tlv(self.TYPE, struct.pack(">HB", self.event_type, self.enabled << 7))

    @classmethod
    def decode_value(cls, value: bytes) -> EventNotificationState:
        c = _Cursor(value, "EventNotificationState")
        out = cls(c.u16("EventType"), bool(c.u8("NotificationState") & 0x80))
        c.end()
        return out


@_register
@dataclass(frozen=True, slots=True)
class ReaderEventNotificationSpec(Parameter):
    states: tuple[EventNotificationState, ...]
    TYPE: ClassVar[int] = 244

    def encode(self) -> bytes:
        return _tlv(self.TYPE, _encode_all(self.states))

    @classmethod
    def decode_value(cls, value: bytes) -> ReaderEventNotificationSpec:
        ps = parse_params(value, "ReaderEventNotificationSpec")
        _only(ps, "ReaderEventNotificationSpec", EventNotificationState)
        return cls(_many(ps, EventNotificationState))


@_register
@dataclass(frozen=True, slots=True)
class EventsAndReports(Parameter):
    hold_upon_reconnect: bool = False
    TYPE: ClassVar[int] = 226

    def encode(self) -> bytes:
        return _tlv(self.TYPE, bytes([self.hold_upon_reconnect << 7]))

    @classmethod
    def decode_value(cls, value: bytes) -> EventsAndReports:
        c = _Cursor(value, "EventsAndReports")
        out = cls(bool(c.u8("HoldEventsAndReportsUponReconnect") & 0x80))
        c.end()
        return out


@_register
@dataclass(frozen=True, slots=True)
class Identification(Parameter):
    id_type: int  # 0 MAC, 1 EPC
    reader_id: bytes
    TYPE: ClassVar[int] = 218

    def encode(self) -> bytes:
        return _tlv(
            self.TYPE, bytes([self.id_type]) + _U16.pack(len(self.reader_id)) + self.reader_id
        )

    @classmethod
    def decode_value(cls, value: bytes) -> Identification:
        c = _Cursor(value, "Identification")
        id_type = c.u8("IDType")
        out = cls(id_type, bytes(c.u8v("ReaderID")))
        c.end()
        return out


@_register
@dataclass(frozen=True, slots=True)
class AntennaProperties(Parameter):
    antenna_id: int
    connected: bool = True
    gain: int = 0  # dBi × 100
    TYPE: ClassVar[int] = 221

    def encode(self) -> bytes:
        return _tlv(self.TYPE, struct.pack(">BHh", self.connected << 7, self.antenna_id, self.gain))

    @classmethod
    def decode_value(cls, value: bytes) -> AntennaProperties:
        c = _Cursor(value, "AntennaProperties")
        connected = bool(c.u8("AntennaConnected") & 0x80)
        antenna, gain = c.u16("AntennaID"), c.s16("AntennaGain")
        c.end()
        return cls(antenna, connected, gain)


@_register
@dataclass(frozen=True, slots=True)
class AccessReportSpec(Parameter):
    trigger: int = 0  # 0 whenever ROReport is generated, 1 end of AccessSpec
    TYPE: ClassVar[int] = 239

    def encode(self) -> bytes:
        return _tlv(self.TYPE, bytes([self.trigger]))

    @classmethod
    def decode_value(cls, value: bytes) -> AccessReportSpec:
        c = _Cursor(value, "AccessReportSpec")
        out = cls(c.u8("AccessReportTrigger"))
        c.end()
        return out


# ROSpec (spec 16.2.4) and reporting (16.2.7)


@_register
@dataclass(frozen=True, slots=True)
class ROSpecStartTrigger(Parameter):
    trigger: int = 1  # 0 Null, 1 Immediate, 2 Periodic, 3 GPI
    other: tuple[Parameter, ...] = ()  # PeriodicTriggerValue / GPITriggerValue kept raw
    TYPE: ClassVar[int] = 179

    def encode(self) -> bytes:
        return _tlv(self.TYPE, bytes([self.trigger]) + _encode_all(self.other))

    @classmethod
    def decode_value(cls, value: bytes) -> ROSpecStartTrigger:
        c = _Cursor(value, "ROSpecStartTrigger")
        return cls(c.u8("ROSpecStartTriggerType"), c.params())


@_register
@dataclass(frozen=True, slots=True)
class ROSpecStopTrigger(Parameter):
    trigger: int = 0  # 0 Null, 1 Duration, 2 GPI with timeout
    duration_ms: int = 0
    other: tuple[Parameter, ...] = ()
    TYPE: ClassVar[int] = 182

    def encode(self) -> bytes:
        body = struct.pack(">BI", self.trigger, self.duration_ms)
        return _tlv(self.TYPE, body + _encode_all(self.other))

    @classmethod
    def decode_value(cls, value: bytes) -> ROSpecStopTrigger:
        c = _Cursor(value, "ROSpecStopTrigger")
        trigger, duration = c.u8("ROSpecStopTriggerType"), c.u32("DurationTriggerValue")
        return cls(trigger, duration, c.params())


@_register
@dataclass(frozen=True, slots=True)
class ROBoundarySpec(Parameter):
    start: ROSpecStartTrigger = ROSpecStartTrigger()
    stop: ROSpecStopTrigger = ROSpecStopTrigger()
    TYPE: ClassVar[int] = 178

    def encode(self) -> bytes:
        return _tlv(self.TYPE, self.start.encode() + self.stop.encode())

    @classmethod
    def decode_value(cls, value: bytes) -> ROBoundarySpec:
        where = "ROBoundarySpec"
        ps = parse_params(value, where)
        _only(ps, where, ROSpecStartTrigger, ROSpecStopTrigger)
        return cls(_req(ps, ROSpecStartTrigger, where), _req(ps, ROSpecStopTrigger, where))


@_register
@dataclass(frozen=True, slots=True)
class TagObservationTrigger(Parameter):
    trigger: int = 0  # 0 UponNTags, 1 UponSilenceMs, 2 UponNAttempts
    number_of_tags: int = 0
    number_of_attempts: int = 0
    t_ms: int = 0
    timeout_ms: int = 0
    TYPE: ClassVar[int] = 185

    def encode(self) -> bytes:
        return _tlv(
            self.TYPE,
            struct.pack(
                ">BBHHHI",
                self.trigger,
                0,
                self.number_of_tags,
                self.number_of_attempts,
                self.t_ms,
                self.timeout_ms,
            ),
        )

    @classmethod
    def decode_value(cls, value: bytes) -> TagObservationTrigger:
        c = _Cursor(value, "TagObservationTrigger")
        trigger, _reserved = c.u8("TriggerType"), c.u8("Reserved")
        out = cls(
            trigger, c.u16("NumberOfTags"), c.u16("NumberOfAttempts"), c.u16("T"), c.u32("Timeout")
        )
        c.end()
        return out


@_register
@dataclass(frozen=True, slots=True)
class AISpecStopTrigger(Parameter):
    trigger: int = 0  # 0 Null, 1 Duration, 2 GPI with timeout, 3 Tag observation
    duration_ms: int = 0
    tag_observation: TagObservationTrigger | None = None
    other: tuple[Parameter, ...] = ()
    TYPE: ClassVar[int] = 184

    def encode(self) -> bytes:
        body = struct.pack(">BI", self.trigger, self.duration_ms)
        return _tlv(self.TYPE, body + _encode_all((self.tag_observation, *self.other)))

    @classmethod
    def decode_value(cls, value: bytes) -> AISpecStopTrigger:
        c = _Cursor(value, "AISpecStopTrigger")
        trigger, duration = c.u8("AISpecStopTriggerType"), c.u32("DurationTrigger")
        ps = c.params()
        return cls(
            trigger,
            duration,
            _one(ps, TagObservationTrigger, c.where),
            _rest(ps, TagObservationTrigger),
        )


@_register
@dataclass(frozen=True, slots=True)
class AISpec(Parameter):
    antenna_ids: tuple[int, ...]  # (0,) = every antenna
    stop: AISpecStopTrigger = AISpecStopTrigger()
    other: tuple[Parameter, ...] = ()  # InventoryParameterSpec (kept raw), Custom
    TYPE: ClassVar[int] = 183

    def encode(self) -> bytes:
        return _tlv(
            self.TYPE, _u16v(self.antenna_ids) + self.stop.encode() + _encode_all(self.other)
        )

    @classmethod
    def decode_value(cls, value: bytes) -> AISpec:
        c = _Cursor(value, "AISpec")
        antennas = c.u16v("AntennaIDs")
        ps = c.params()
        return cls(antennas, _req(ps, AISpecStopTrigger, c.where), _rest(ps, AISpecStopTrigger))


@_register
@dataclass(frozen=True, slots=True)
class C1G2EPCMemorySelector(Parameter):
    enable_crc: bool = False
    enable_pc: bool = False
    TYPE: ClassVar[int] = 348

    def encode(self) -> bytes:
        return _tlv(self.TYPE, bytes([(self.enable_crc << 7) | (self.enable_pc << 6)]))

    @classmethod
    def decode_value(cls, value: bytes) -> C1G2EPCMemorySelector:
        c = _Cursor(value, "C1G2EPCMemorySelector")
        flags = c.u8("flags")
        c.end()
        return cls(bool(flags & 0x80), bool(flags & 0x40))


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


@_register
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

    def encode(self) -> bytes:
        flags = 0
        for bit, name in zip(range(15, 5, -1), CONTENT_FIELDS, strict=True):
            flags |= bool(getattr(self, name)) << bit
        return _tlv(self.TYPE, _U16.pack(flags) + _encode_all((self.epc_memory, *self.other)))

    @classmethod
    def decode_value(cls, value: bytes) -> TagReportContentSelector:
        c = _Cursor(value, "TagReportContentSelector")
        flags = c.u16("flags")
        b = [bool(flags & (1 << bit)) for bit in range(15, 5, -1)]
        ps = c.params()
        return cls(
            rospec_id=b[0],
            spec_index=b[1],
            inventory_parameter_spec_id=b[2],
            antenna_id=b[3],
            channel_index=b[4],
            peak_rssi=b[5],
            first_seen=b[6],
            last_seen=b[7],
            tag_seen_count=b[8],
            access_spec_id=b[9],
            epc_memory=_one(ps, C1G2EPCMemorySelector, c.where),
            other=_rest(ps, C1G2EPCMemorySelector),
        )


@_register
@dataclass(frozen=True, slots=True)
class ROReportSpec(Parameter):
    trigger: int = 1  # 0 None, 1 Upon N tags or end of AISpec, 2 … or end of ROSpec
    n: int = 0
    selector: TagReportContentSelector = TagReportContentSelector()
    other: tuple[Parameter, ...] = ()
    TYPE: ClassVar[int] = 237

    def encode(self) -> bytes:
        body = struct.pack(">BH", self.trigger, self.n) + self.selector.encode()
        return _tlv(self.TYPE, body + _encode_all(self.other))

    @classmethod
    def decode_value(cls, value: bytes) -> ROReportSpec:
        c = _Cursor(value, "ROReportSpec")
        trigger, n = c.u8("ROReportTrigger"), c.u16("N")
        ps = c.params()
        return cls(
            trigger,
            n,
            _req(ps, TagReportContentSelector, c.where),
            _rest(ps, TagReportContentSelector),
        )


ROSPEC_DISABLED, ROSPEC_INACTIVE, ROSPEC_ACTIVE = 0, 1, 2


@_register
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

    def encode(self) -> bytes:
        body = struct.pack(">IBB", self.rospec_id, self.priority, self.state)
        body += _encode_all((self.boundary, *self.specs, *self.other, self.report))
        return _tlv(self.TYPE, body)

    @classmethod
    def decode_value(cls, value: bytes) -> ROSpec:
        c = _Cursor(value, "ROSpec")
        rospec_id, priority, state = c.u32("ROSpecID"), c.u8("Priority"), c.u8("CurrentState")
        ps = c.params()
        return cls(
            rospec_id,
            _req(ps, ROBoundarySpec, c.where),
            _many(ps, AISpec),
            priority,
            state,
            _one(ps, ROReportSpec, c.where),
            _rest(ps, ROBoundarySpec, AISpec, ROReportSpec),
        )


@_register
@dataclass(frozen=True, slots=True)
class EPCData(Parameter):
    """An EPC of any length: bit count, then the bits padded to whole bytes."""

    epc: bytes
    bits: int = -1  # -1: 8 × len(epc)
    TYPE: ClassVar[int] = 241

    @property
    def bit_count(self) -> int:
        return 8 * len(self.epc) if self.bits < 0 else self.bits

    def encode(self) -> bytes:
        return _tlv(self.TYPE, _U16.pack(self.bit_count) + self.epc)

    @classmethod
    def decode_value(cls, value: bytes) -> EPCData:
        c = _Cursor(value, "EPCData")
        bits = c.u16("EPCLengthBits")
        epc = c.take((bits + 7) // 8, "EPC")
        c.end()
        return cls(epc, -1 if bits == 8 * len(epc) else bits)


_TV_EPC96 = 13


@dataclass(frozen=True, slots=True)
class TagReportData(Parameter):
    """One tag's report; ``epc96`` chooses the compact TV EPC-96 form (12-byte EPCs only)."""

    epc: bytes
    epc96: bool = True
    epc_bits: int = -1  # EPCData only; -1 = 8 × len(epc)
    rospec_id: int | None = None
    spec_index: int | None = None
    inventory_parameter_spec_id: int | None = None
    antenna_id: int | None = None
    peak_rssi: int | None = None
    channel_index: int | None = None
    first_seen: int | None = None  # µs since the Unix epoch (FirstSeenTimestampUTC)
    first_seen_uptime: int | None = None
    last_seen: int | None = None
    last_seen_uptime: int | None = None
    tag_seen_count: int | None = None
    pc: int | None = None
    crc: int | None = None
    access_spec_id: int | None = None
    other: tuple[Parameter, ...] = ()
    TYPE: ClassVar[int] = 240

    def encode(self) -> bytes:
        parts: list[bytes] = []
        if self.epc96:
            if len(self.epc) != 12:
                raise FrameError(f"EPC-96 needs 12 bytes, not {len(self.epc)}")
            parts.append(b"\x8d" + self.epc)
        else:
            parts.append(EPCData(self.epc, self.epc_bits).encode())
        for ptype, value in (
            (9, self.rospec_id),
            (14, self.spec_index),
            (10, self.inventory_parameter_spec_id),
            (1, self.antenna_id),
            (6, self.peak_rssi),
            (7, self.channel_index),
            (2, self.first_seen),
            (3, self.first_seen_uptime),
            (4, self.last_seen),
            (5, self.last_seen_uptime),
            (8, self.tag_seen_count),
            (12, self.pc),
            (11, self.crc),
            (16, self.access_spec_id),
        ):
            if value is not None:
                parts.append(bytes([0x80 | ptype]) + _TV_STRUCTS[ptype].pack(value))
        parts.extend(p.encode() for p in self.other)
        return _tlv(self.TYPE, b"".join(parts))

    @classmethod
    def decode_value(cls, value: bytes) -> TagReportData:
        where = "TagReportData"
        fields: dict[str, int] = {}
        epc: bytes | None = None
        epc96 = True
        bits = -1
        other: list[Parameter] = []
        for p in parse_params(value, where):
            is_epc = isinstance(p, EPCData) or (isinstance(p, Tv) and p.type == _TV_EPC96)
            if is_epc and epc is not None:
                raise FrameError(f"{where}: more than one EPC", status=M_DUPLICATE_PARAMETER)
            if isinstance(p, EPCData):
                epc, epc96, bits = p.epc, False, p.bits
            elif isinstance(p, Tv) and p.type == _TV_EPC96:
                epc = p.value
            elif isinstance(p, Tv) and p.type in _TV_FIELDS:
                name = _TV_FIELDS[p.type]
                if name in fields:
                    raise FrameError(f"{where}: more than one {name}", status=M_DUPLICATE_PARAMETER)
                fields[name] = int(_TV_STRUCTS[p.type].unpack(p.value)[0])
            else:
                other.append(p)
        if epc is None:
            raise FrameError(f"{where}: no EPCData or EPC-96", status=M_MISSING_PARAMETER)
        return cls(epc, epc96, bits, other=tuple(other), **fields)

    @property
    def epc_hex(self) -> str:
        return self.epc.hex()


_register(TagReportData)

_TV_STRUCTS: dict[int, struct.Struct] = {
    1: _U16,
    2: _U64,
    3: _U64,
    4: _U64,
    5: _U64,
    6: _S8,
    7: _U16,
    8: _U16,
    9: _U32,
    10: _U16,
    11: _U16,
    12: _U16,
    14: _U16,
    16: _U32,
}
_TV_FIELDS: dict[int, str] = {
    9: "rospec_id",
    14: "spec_index",
    10: "inventory_parameter_spec_id",
    1: "antenna_id",
    6: "peak_rssi",
    7: "channel_index",
    2: "first_seen",
    3: "first_seen_uptime",
    4: "last_seen",
    5: "last_seen_uptime",
    8: "tag_seen_count",
    12: "pc",
    11: "crc",
    16: "access_spec_id",
}


# --- messages ------------------------------------------------------------------------------------


class Message:
    """A decoded LLRP message; ``kind`` is its type number."""

    __slots__ = ()
    TYPE: ClassVar[int] = -1
    msg_id: int

    @property
    def kind(self) -> int:
        return self.TYPE

    @property
    def name(self) -> str:
        return MESSAGE_NAMES.get(self.kind, f"type {self.kind}")

    def body(self) -> bytes:
        raise NotImplementedError

    def encode(self) -> bytes:
        body = self.body()
        return HEADER.pack((VERSION << 10) | self.kind, HEADER.size + len(body), self.msg_id) + body


@dataclass(frozen=True, slots=True)
class Bare(Message):
    """A message with no fields: CLOSE_CONNECTION, KEEPALIVE(_ACK), GET_REPORT, ENABLE_EVENTS_AND_REPORTS."""

    type: int
    msg_id: int = 0
    other: tuple[Parameter, ...] = ()

    @property
    def kind(self) -> int:
        return self.type

    def body(self) -> bytes:
        return _encode_all(self.other)

    @classmethod
    def decode_body(cls, kind: int, msg_id: int, body: bytes) -> Bare:
        return cls(kind, msg_id, parse_params(body, MESSAGE_NAMES[kind]))


@dataclass(frozen=True, slots=True)
class StatusResponse(Message):
    """A response carrying only an LLRPStatus, and ERROR_MESSAGE."""

    type: int
    msg_id: int = 0
    status: LLRPStatus = LLRPStatus()
    other: tuple[Parameter, ...] = ()

    @property
    def kind(self) -> int:
        return self.type

    def body(self) -> bytes:
        return self.status.encode() + _encode_all(self.other)

    @classmethod
    def decode_body(cls, kind: int, msg_id: int, body: bytes) -> StatusResponse:
        where = MESSAGE_NAMES[kind]
        ps = parse_params(body, where)
        return cls(kind, msg_id, _req(ps, LLRPStatus, where), _rest(ps, LLRPStatus))


@dataclass(frozen=True, slots=True)
class SpecCommand(Message):
    """DELETE/START/STOP/ENABLE/DISABLE_ROSPEC and the AccessSpec ones: a u32 spec id (0 = all)."""

    type: int
    msg_id: int = 0
    spec_id: int = 0

    @property
    def kind(self) -> int:
        return self.type

    def body(self) -> bytes:
        return _U32.pack(self.spec_id)

    @classmethod
    def decode_body(cls, kind: int, msg_id: int, body: bytes) -> SpecCommand:
        c = _Cursor(body, MESSAGE_NAMES[kind])
        spec_id = c.u32("spec id")
        c.end()
        return cls(kind, msg_id, spec_id)


@dataclass(frozen=True, slots=True)
class GetReaderCapabilities(Message):
    msg_id: int = 0
    requested: int = 0  # 0 all, 1 general, 2 LLRP, 3 regulatory, 4 air protocol
    other: tuple[Parameter, ...] = ()
    TYPE: ClassVar[int] = GET_READER_CAPABILITIES

    def body(self) -> bytes:
        return bytes([self.requested]) + _encode_all(self.other)

    @classmethod
    def decode_body(cls, kind: int, msg_id: int, body: bytes) -> GetReaderCapabilities:
        c = _Cursor(body, "GET_READER_CAPABILITIES")
        return cls(msg_id, c.u8("RequestedData"), c.params())


@dataclass(frozen=True, slots=True)
class GetReaderCapabilitiesResponse(Message):
    msg_id: int = 0
    status: LLRPStatus = LLRPStatus()
    general: GeneralDeviceCapabilities | None = None
    llrp: LLRPCapabilities | None = None
    regulatory: RegulatoryCapabilities | None = None
    c1g2: C1G2LLRPCapabilities | None = None
    other: tuple[Parameter, ...] = ()
    TYPE: ClassVar[int] = GET_READER_CAPABILITIES_RESPONSE

    def body(self) -> bytes:
        return _encode_all(
            (self.status, self.general, self.llrp, self.regulatory, self.c1g2, *self.other)
        )

    @classmethod
    def decode_body(cls, kind: int, msg_id: int, body: bytes) -> GetReaderCapabilitiesResponse:
        w = "GET_READER_CAPABILITIES_RESPONSE"
        ps = parse_params(body, w)
        known = (
            LLRPStatus,
            GeneralDeviceCapabilities,
            LLRPCapabilities,
            RegulatoryCapabilities,
            C1G2LLRPCapabilities,
        )
        return cls(
            msg_id,
            _req(ps, LLRPStatus, w),
            _one(ps, GeneralDeviceCapabilities, w),
            _one(ps, LLRPCapabilities, w),
            _one(ps, RegulatoryCapabilities, w),
            _one(ps, C1G2LLRPCapabilities, w),
            _rest(ps, *known),
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

    def body(self) -> bytes:
        fixed = struct.pack(">HBHH", self.antenna_id, self.requested, self.gpi_port, self.gpo_port)
        return fixed + _encode_all(self.other)

    @classmethod
    def decode_body(cls, kind: int, msg_id: int, body: bytes) -> GetReaderConfig:
        c = _Cursor(body, "GET_READER_CONFIG")
        antenna, requested = c.u16("AntennaID"), c.u8("RequestedData")
        gpi, gpo = c.u16("GPIPortNum"), c.u16("GPOPortNum")
        return cls(msg_id, antenna, requested, gpi, gpo, c.params())


@dataclass(frozen=True, slots=True)
class GetReaderConfigResponse(Message):
    msg_id: int = 0
    status: LLRPStatus = LLRPStatus()
    identification: Identification | None = None
    antennas: tuple[AntennaProperties, ...] = ()
    event_spec: ReaderEventNotificationSpec | None = None
    report_spec: ROReportSpec | None = None
    access_report_spec: AccessReportSpec | None = None
    keepalive: KeepaliveSpec | None = None
    events_and_reports: EventsAndReports | None = None
    other: tuple[Parameter, ...] = ()
    TYPE: ClassVar[int] = GET_READER_CONFIG_RESPONSE

    def body(self) -> bytes:
        return _encode_all(
            (
                self.status,
                self.identification,
                *self.antennas,
                self.event_spec,
                self.report_spec,
                self.access_report_spec,
                self.keepalive,
                self.events_and_reports,
                *self.other,
            )
        )

    @classmethod
    def decode_body(cls, kind: int, msg_id: int, body: bytes) -> GetReaderConfigResponse:
        w = "GET_READER_CONFIG_RESPONSE"
        ps = parse_params(body, w)
        return cls(
            msg_id,
            _req(ps, LLRPStatus, w),
            _one(ps, Identification, w),
            _many(ps, AntennaProperties),
            _one(ps, ReaderEventNotificationSpec, w),
            _one(ps, ROReportSpec, w),
            _one(ps, AccessReportSpec, w),
            _one(ps, KeepaliveSpec, w),
            _one(ps, EventsAndReports, w),
            _rest(ps, *_CONFIG_TYPES, LLRPStatus, Identification),
        )


_CONFIG_TYPES: tuple[type[Parameter], ...] = (
    AntennaProperties,
    ReaderEventNotificationSpec,
    ROReportSpec,
    AccessReportSpec,
    KeepaliveSpec,
    EventsAndReports,
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
    other: tuple[Parameter, ...] = ()  # AntennaConfiguration, GPO/GPI, Custom: kept raw
    TYPE: ClassVar[int] = SET_READER_CONFIG

    def body(self) -> bytes:
        return bytes([self.reset << 7]) + _encode_all(
            (
                self.event_spec,
                *self.antennas,
                self.report_spec,
                self.access_report_spec,
                self.keepalive,
                self.events_and_reports,
                *self.other,
            )
        )

    @classmethod
    def decode_body(cls, kind: int, msg_id: int, body: bytes) -> SetReaderConfig:
        c = _Cursor(body, "SET_READER_CONFIG")
        reset = bool(c.u8("ResetToFactoryDefault") & 0x80)
        ps = c.params()
        w = c.where
        return cls(
            msg_id,
            reset,
            _one(ps, ReaderEventNotificationSpec, w),
            _many(ps, AntennaProperties),
            _one(ps, ROReportSpec, w),
            _one(ps, AccessReportSpec, w),
            _one(ps, KeepaliveSpec, w),
            _one(ps, EventsAndReports, w),
            _rest(ps, *_CONFIG_TYPES),
        )


@dataclass(frozen=True, slots=True)
class AddROSpec(Message):
    msg_id: int
    rospec: ROSpec
    TYPE: ClassVar[int] = ADD_ROSPEC

    def body(self) -> bytes:
        return self.rospec.encode()

    @classmethod
    def decode_body(cls, kind: int, msg_id: int, body: bytes) -> AddROSpec:
        ps = parse_params(body, "ADD_ROSPEC")
        _only(ps, "ADD_ROSPEC", ROSpec)
        return cls(msg_id, _req(ps, ROSpec, "ADD_ROSPEC"))


@dataclass(frozen=True, slots=True)
class ROAccessReport(Message):
    msg_id: int = 0
    tags: tuple[TagReportData, ...] = ()
    other: tuple[Parameter, ...] = ()
    TYPE: ClassVar[int] = RO_ACCESS_REPORT

    def body(self) -> bytes:
        return b"".join(t.encode() for t in self.tags) + _encode_all(self.other)

    @classmethod
    def decode_body(cls, kind: int, msg_id: int, body: bytes) -> ROAccessReport:
        ps = parse_params(body, "RO_ACCESS_REPORT")
        return cls(msg_id, _many(ps, TagReportData), _rest(ps, TagReportData))


@dataclass(frozen=True, slots=True)
class ReaderEventNotification(Message):
    msg_id: int
    data: ReaderEventNotificationData
    TYPE: ClassVar[int] = READER_EVENT_NOTIFICATION

    def body(self) -> bytes:
        return self.data.encode()

    @classmethod
    def decode_body(cls, kind: int, msg_id: int, body: bytes) -> ReaderEventNotification:
        w = "READER_EVENT_NOTIFICATION"
        ps = parse_params(body, w)
        _only(ps, w, ReaderEventNotificationData)
        return cls(msg_id, _req(ps, ReaderEventNotificationData, w))


@dataclass(frozen=True, slots=True)
class CustomMessage(Message):
    msg_id: int
    vendor: int
    subtype: int
    payload: bytes = b""
    TYPE: ClassVar[int] = CUSTOM_MESSAGE

    def body(self) -> bytes:  # the vendor and subtype are header fields (see encode)
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


_MESSAGE_DECODERS: dict[int, Callable[[int, int, bytes], Message]] = {
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
    _MESSAGE_DECODERS[_t] = Bare.decode_body
for _t in (*(RESPONSE_TO[t] for t in RESPONSE_TO if t not in (1, 2)), ERROR_MESSAGE):
    _MESSAGE_DECODERS[_t] = StatusResponse.decode_body
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
    _MESSAGE_DECODERS[_t] = SpecCommand.decode_body


@dataclass(frozen=True, slots=True)
class Header:
    version: int
    type: int
    length: int
    msg_id: int


def read_header(data: bytes) -> Header:
    """The fixed 10-byte header; a FrameError if it cannot be a frame's start."""
    if len(data) < HEADER.size:
        raise FrameError(f"frame of {len(data)} bytes is shorter than the 10-byte header")
    word, length, msg_id = HEADER.unpack_from(data)
    kind, version = word & 0x03FF, (word >> 10) & 0x07
    if word >> 13:
        raise FrameError(
            f"message type {kind}: reserved header bits set", msg_type=kind, msg_id=msg_id
        )
    if length < HEADER.size:
        raise FrameError(
            f"message type {kind}: length {length} is below the 10-byte header",
            msg_type=kind,
            msg_id=msg_id,
        )
    if length > MAX_FRAME:
        raise FrameError(
            f"message type {kind}: length {length} is beyond {MAX_FRAME} bytes",
            msg_type=kind,
            msg_id=msg_id,
        )
    return Header(version, kind, length, msg_id)


def decode_message(frame: bytes) -> Message:
    """Decode one whole frame (exactly its length); anything wrong is a FrameError."""
    head = read_header(frame)
    kind, msg_id = head.type, head.msg_id
    name = MESSAGE_NAMES.get(kind, f"type {kind}")
    try:
        if head.length != len(frame):
            raise FrameError(
                f"{name}: header says {head.length} bytes, frame has {len(frame)}",
                status=M_PARAMETER_ERROR,
            )
        if head.version != VERSION:
            raise FrameError(
                f"{name}: protocol version {head.version} (this reader speaks 1)",
                status=M_UNSUPPORTED_VERSION,
            )
        body = frame[HEADER.size :]
        if kind == CUSTOM_MESSAGE:
            if len(body) < 5:
                raise FrameError("CUSTOM_MESSAGE shorter than its vendor and subtype")
            vendor, subtype = struct.unpack_from(">IB", body)
            return CustomMessage(msg_id, vendor, subtype, body[5:])
        decode = _MESSAGE_DECODERS.get(kind)
        if decode is None:
            known = "unsupported" if kind in MESSAGE_NAMES else "unknown"
            raise FrameError(f"{known} message {name}", status=M_UNSUPPORTED_MESSAGE)
        return decode(kind, msg_id, body)
    except FrameError as exc:
        exc.msg_type, exc.msg_id = kind, msg_id
        raise


def split_frames(buffer: bytes | bytearray) -> tuple[list[bytes], bytes]:
    """Cut complete frames off the front of a stream buffer; return them and the remainder.

    A header whose length cannot be right (below 10 bytes, above MAX_FRAME) is a
    FrameError: the stream cannot be resynchronised after it.
    """
    frames: list[bytes] = []
    pos = 0
    view = bytes(buffer)
    while len(view) - pos >= HEADER.size:
        head = read_header(view[pos : pos + HEADER.size])
        if len(view) - pos < head.length:
            break
        frames.append(view[pos : pos + head.length])
        pos += head.length
    return frames, view[pos:]


def status(
    code: int = M_SUCCESS,
    description: str = "",
    field_num: int | None = None,
    field_code: int = A_INVALID,
) -> LLRPStatus:
    """An LLRPStatus; with ``field_num``, the FieldError that points at the offending field."""
    err = FieldError(field_num, field_code) if field_num is not None else None
    return LLRPStatus(code, description, err)
