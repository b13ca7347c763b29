"""LLRP parameter framing (TV and TLV) and the table that encodes and decodes a value's fields.

Most parameters and messages are a run of fixed fields followed by
sub-parameters, so each declares that run once as ``WIRE`` (``Field``,
``Flags``, ``Sub``, ``Rest``) and ``encode_fields``/``decode_fields`` do both
directions from it. Fixed fields always come before sub-parameters; the
sub-parameters are written in ``WIRE`` order and read back by type. Without a
``Rest`` a sub-parameter no ``Sub`` names is an error (the spec allows none
there), and a value with no sub-parameters at all must end after its fields.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self, TypeVar

from drivers.llrp_frames.constants import (
    M_DUPLICATE_PARAMETER,
    M_MISSING_PARAMETER,
    M_PARAMETER_ERROR,
    M_UNEXPECTED_PARAMETER,
    M_UNKNOWN_PARAMETER,
    TV_SIZES,
    TYPE_CUSTOM,
    FrameError,
)

U8 = struct.Struct(">B")
S8 = struct.Struct(">b")
U16 = struct.Struct(">H")
S16 = struct.Struct(">h")
U32 = struct.Struct(">I")
U64 = struct.Struct(">Q")
_TLV = struct.Struct(">HH")
_SCALARS = {"u8": U8, "s8": S8, "u16": U16, "s16": S16, "u32": U32, "u64": U64}


class Cursor:
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

    def scalar(self, kind: str, what: str) -> int:
        s = _SCALARS[kind]
        return int(s.unpack(self.take(s.size, what))[0])

    def u8(self, what: str) -> int:
        return self.scalar("u8", what)

    def u16(self, what: str) -> int:
        return self.scalar("u16", what)

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


def utf8v(text: str) -> bytes:
    raw = text.encode("utf-8")
    return U16.pack(len(raw)) + raw


def u16v(values: Sequence[int]) -> bytes:
    return U16.pack(len(values)) + struct.pack(f">{len(values)}H", *values)


def u32v(values: Sequence[int]) -> bytes:
    return U16.pack(len(values)) + struct.pack(f">{len(values)}I", *values)


def tlv(ptype: int, body: bytes) -> bytes:
    if len(body) > 0xFFFF - 4:
        raise FrameError(f"parameter type {ptype}: {len(body)} bytes do not fit a TLV")
    return _TLV.pack(ptype, 4 + len(body)) + body


def encode_all(params: Iterable[Parameter | None]) -> bytes:
    return b"".join(p.encode() for p in params if p is not None)


# --- the field table ----------------------------------------------------------------------------

Kind = Literal["u8", "s8", "u16", "s16", "u32", "u64", "utf8v", "u8v", "bytesv", "u16v", "u32v"]


@dataclass(frozen=True, slots=True)
class Field:
    """A fixed field: the attribute it holds (None: reserved, written as 0) and its spec name."""

    attr: str | None
    kind: Kind
    name: str


@dataclass(frozen=True, slots=True)
class Flags:
    """A u8/u16 of single bits: (attribute, bit) pairs; ``ints`` read back as 0/1, the rest bool."""

    name: str
    kind: Literal["u8", "u16"]
    bits: tuple[tuple[str, int], ...]
    ints: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Sub:
    """Sub-parameters of one class: ``one`` (optional), ``req`` (exactly one) or ``many``."""

    attr: str
    cls: type[Parameter]
    how: Literal["one", "req", "many"] = "one"


@dataclass(frozen=True, slots=True)
class Rest:
    """Every sub-parameter no ``Sub`` claims, kept as decoded so that nothing is dropped."""

    attr: str = "other"


Wire = tuple[Field | Flags | Sub | Rest, ...]
_VARIABLE: dict[str, Callable[[Any], bytes]] = {
    "utf8v": utf8v,
    "u8v": lambda v: U16.pack(len(v)) + bytes(v),
    "bytesv": lambda v: U16.pack(len(v)) + v,
    "u16v": u16v,
    "u32v": u32v,
}


def encode_fields(obj: object, wire: Wire) -> bytes:
    """The value of ``obj`` as ``wire`` lays it out (without the parameter or message header)."""
    parts: list[bytes] = []
    for item in wire:
        if isinstance(item, Field):
            value = 0 if item.attr is None else getattr(obj, item.attr)
            scalar = _SCALARS.get(item.kind)
            parts.append(scalar.pack(value) if scalar else _VARIABLE[item.kind](value))
        elif isinstance(item, Flags):
            word = 0
            for attr, bit in item.bits:
                word |= int(getattr(obj, attr)) << bit
            parts.append(_SCALARS[item.kind].pack(word))
        elif isinstance(item, Sub):
            value = getattr(obj, item.attr)
            parts.append(encode_all(value if item.how == "many" else (value,)))
        else:
            parts.append(encode_all(getattr(obj, item.attr)))
    return b"".join(parts)


def decode_fields(wire: Wire, value: bytes, where: str) -> dict[str, Any]:
    """The attributes ``wire`` reads from ``value``; anything off is a FrameError naming ``where``."""
    c = Cursor(value, where)
    out: dict[str, Any] = {}
    subs: list[Sub] = []
    rest: Rest | None = None
    for item in wire:
        if isinstance(item, Field):
            if item.kind in _SCALARS:
                got: Any = c.scalar(item.kind, item.name)
            elif item.kind == "bytesv":
                got = bytes(c.u8v(item.name))
            else:
                got = getattr(c, item.kind)(item.name)
            if item.attr is not None:
                out[item.attr] = got
        elif isinstance(item, Flags):
            word = c.scalar(item.kind, item.name)
            for attr, bit in item.bits:
                b = (word >> bit) & 1
                out[attr] = b if attr in item.ints else bool(b)
        elif isinstance(item, Sub):
            subs.append(item)
        else:
            rest = item
    if not subs and rest is None:
        c.end()
        return out
    ps = c.params()
    known = tuple(s.cls for s in subs)
    if rest is None:
        only(ps, where, *known)
    for s in subs:
        out[s.attr] = many(ps, s.cls) if s.how == "many" else one(ps, s.cls, where, s.how == "req")
    if rest is not None:
        out[rest.attr] = others(ps, *known)
    return out


# --- parameters ----------------------------------------------------------------------------------


class Parameter:
    """A decoded LLRP parameter: knows how to write itself back, header included."""

    __slots__ = ()
    TYPE: ClassVar[int] = -1
    WIRE: ClassVar[Wire] = ()

    def encode(self) -> bytes:
        return tlv(self.TYPE, encode_fields(self, self.WIRE))

    @classmethod
    def decode_value(cls, value: bytes) -> Self:
        return cls(**decode_fields(cls.WIRE, value, cls.__name__))


P = TypeVar("P", bound=Parameter)
_PT = TypeVar("_PT", bound=type[Parameter])


@dataclass(frozen=True, slots=True)
class Tlv(Parameter):
    """A TLV parameter this codec keeps as bytes (well-formed, not interpreted)."""

    type: int
    value: bytes = b""

    def encode(self) -> bytes:
        return tlv(self.type, self.value)


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
        return tlv(TYPE_CUSTOM, struct.pack(">II", self.vendor, self.subtype) + self.payload)


_DECODERS: dict[int, Callable[[bytes], Parameter]] = {}


def register(cls: _PT) -> _PT:
    """Decode this TLV type to ``cls`` wherever parameters are parsed."""
    _DECODERS[cls.TYPE] = cls.decode_value
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


def one(params: Sequence[Parameter], cls: type[P], where: str, required: bool = False) -> P | None:
    found = [p for p in params if isinstance(p, cls)]
    if len(found) > 1:
        raise FrameError(f"{where}: more than one {cls.__name__}", status=M_DUPLICATE_PARAMETER)
    if required and not found:
        raise FrameError(f"{where}: missing {cls.__name__}", status=M_MISSING_PARAMETER)
    return found[0] if found else None


def many(params: Sequence[Parameter], cls: type[P]) -> tuple[P, ...]:
    return tuple(p for p in params if isinstance(p, cls))


def others(params: Sequence[Parameter], *known: type[Parameter]) -> tuple[Parameter, ...]:
    return tuple(p for p in params if not isinstance(p, known))


def only(params: Sequence[Parameter], where: str, *allowed: type[Parameter]) -> None:
    for p in params:
        if not isinstance(p, allowed):
            name = f"type {p.type}" if isinstance(p, Tlv | Tv) else type(p).__name__
            raise FrameError(f"{where}: unexpected parameter {name}", status=M_UNEXPECTED_PARAMETER)
