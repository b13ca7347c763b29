"""LLRP numbers: message and status codes, the TV sizes, and the codec's one error."""

from __future__ import annotations

import struct

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
