"""Tag reports: EPCData and TagReportData with its TV fields (spec 16.2.7.3)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar

from drivers.llrp_frames.constants import M_DUPLICATE_PARAMETER, M_MISSING_PARAMETER, FrameError
from drivers.llrp_frames.wire import (
    S8,
    U16,
    U32,
    U64,
    Cursor,
    Parameter,
    Tv,
    parse_params,
    register,
    tlv,
)


@register
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
        return tlv(self.TYPE, U16.pack(self.bit_count) + self.epc)

    @classmethod
    def decode_value(cls, value: bytes) -> EPCData:
        c = Cursor(value, "EPCData")
        bits = c.u16("EPCLengthBits")
        epc = c.take((bits + 7) // 8, "EPC")
        c.end()
        return cls(epc, -1 if bits == 8 * len(epc) else bits)


_TV_EPC96 = 13
# TagReportData's TV fields: type -> (attribute, value struct), in the order they are written.
_TV_FIELDS: dict[int, tuple[str, struct.Struct]] = {
    9: ("rospec_id", U32),
    14: ("spec_index", U16),
    10: ("inventory_parameter_spec_id", U16),
    1: ("antenna_id", U16),
    6: ("peak_rssi", S8),
    7: ("channel_index", U16),
    2: ("first_seen", U64),
    3: ("first_seen_uptime", U64),
    4: ("last_seen", U64),
    5: ("last_seen_uptime", U64),
    8: ("tag_seen_count", U16),
    12: ("pc", U16),
    11: ("crc", U16),
    16: ("access_spec_id", U32),
}


@register
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
        for ptype, (name, fmt) in _TV_FIELDS.items():
            value = getattr(self, name)
            if value is not None:
                parts.append(bytes([0x80 | ptype]) + fmt.pack(value))
        parts.extend(p.encode() for p in self.other)
        return tlv(self.TYPE, b"".join(parts))

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
                name, fmt = _TV_FIELDS[p.type]
                if name in fields:
                    raise FrameError(f"{where}: more than one {name}", status=M_DUPLICATE_PARAMETER)
                fields[name] = int(fmt.unpack(p.value)[0])
            else:
                other.append(p)
        if epc is None:
            raise FrameError(f"{where}: no EPCData or EPC-96", status=M_MISSING_PARAMETER)
        return cls(epc, epc96, bits, other=tuple(other), **fields)
