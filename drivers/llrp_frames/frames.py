"""Frames: the 10-byte header, decoding one whole frame, cutting a stream into frames."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from drivers.llrp_frames.constants import (
    A_INVALID,
    CUSTOM_MESSAGE,
    HEADER,
    M_PARAMETER_ERROR,
    M_SUCCESS,
    M_UNSUPPORTED_MESSAGE,
    M_UNSUPPORTED_VERSION,
    MAX_FRAME,
    MESSAGE_NAMES,
    VERSION,
    FrameError,
)
from drivers.llrp_frames.messages import MESSAGE_DECODERS, CustomMessage, Message
from drivers.llrp_frames.status import FieldError, LLRPStatus


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
        decode = MESSAGE_DECODERS.get(kind)
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
