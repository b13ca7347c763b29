"""EPC through epcpy: tag data -> pure identity URI and GS1 element string.

Tag data is the EPC as the reader delivers it, from the header on: binary
bytes (an LLRP EPC-96 field), or the same as hex text (how many readers and
sllurp print it), or an EPC URI (``urn:epc:id:...`` / ``urn:epc:tag:...``).
Data that is all ASCII hex digits is taken as hex text: binary EPC bytes fall
in that range by chance about once in 10^11 reads, and then the text is half
as long as any EPC scheme needs, so a wrong guess ends as an unknown, never as
a different item.

Trailing bits past the scheme's length (EPC memory is read in 16-bit words)
are ignored, as epcpy does. A TID (class id E0/E2/E3) or a header no EPC
scheme uses is an ``unknown`` that keeps the hex in ``raw``.
"""

from __future__ import annotations

from typing import Any

# Imported from where they are defined: epcpy's package __init__s re-export
# without __all__, which mypy --strict does not accept as an export.
from epcpy.epc_schemes.base_scheme import EPCScheme, GS1Element
from epcpy.epc_schemes.sgln import SGLN
from epcpy.epc_schemes.sgtin import SGTIN
from epcpy.epc_schemes.sscc import SSCC
from epcpy.utils.common import ConvertException, replace_uri_escapes
from epcpy.utils.parsers import (
    TAG_ENCODABLE_HEX_HEADERS,
    epc_pure_identity_to_scheme,
    hex_to_tag_encodable,
    tag_uri_to_tag_encodable,
)

from agent.identify.location import gln_location
from agent.model import Identity

_HEX = frozenset(b"0123456789abcdefABCDEF")
_TID_CLASSES = {"E0": "ISO/IEC 7816-6", "E2": "EPCglobal", "E3": "ISO/IEC 7816-6 (extended)"}
# epcpy raises its ConvertException for what it recognises as wrong and lets
# ValueError (int('') on a short field), IndexError and KeyError through on
# data shaped unlike any EPC: all mean "not a valid EPC", never a crash.
EPC_ERRORS = (ConvertException, ValueError, IndexError, KeyError)
MAX_EPC_HEX = 128  # 512 bits: longer than any EPC scheme, shorter than a user memory dump


def identify_epc(data: bytes, gln_is_location: bool = True) -> Identity:
    """What tag data means. Never raises: anything undecodable is an unknown with the hex."""
    if data[:8].lower() == b"urn:epc:":
        return _from_uri(data)
    hex_text, raw = _hex(data)
    if len(hex_text) > MAX_EPC_HEX:
        return _unknown(raw, f"EPC: longer than {MAX_EPC_HEX // 2} bytes")
    header = hex_text[:2]
    if header in _TID_CLASSES:
        return _unknown(raw, f"a TID ({_TID_CLASSES[header]} class id {header}), not an EPC")
    if header not in TAG_ENCODABLE_HEX_HEADERS:
        what = "an unprogrammed tag" if header == "00" else "no EPC scheme uses it"
        return _unknown(raw, f"EPC: header {header or 'missing'}: {what}")
    try:
        scheme: EPCScheme = hex_to_tag_encodable(hex_text)
    except EPC_ERRORS as exc:
        return _unknown(raw, f"EPC: {_reason(exc)}")
    return _identity(raw, scheme, gln_is_location)


def raw_tag_key(data: bytes) -> Identity | None:
    """A tag that is no EPC (a TID, a header no GS1 scheme uses) as a house item key, the
    EPC Tag Data Standard's raw URI ``urn:epc:raw:<bits>.x<HEX>``: for sites that tag
    their own assets (the station's ``raw_tag_ids``). None for what stays unknown: a
    GS1 header that did not decode (a misread, not a house tag), an unprogrammed or
    empty tag, or data too long for an EPC."""
    if not data or data[:8].lower() == b"urn:epc:":
        return None
    hex_text, raw = _hex(data)
    header = hex_text[:2]
    if len(hex_text) > MAX_EPC_HEX or header == "00":
        return None
    if header in _TID_CLASSES:
        why = f"a TID ({_TID_CLASSES[header]} class id {header}) taken as a house item key"
    elif header not in TAG_ENCODABLE_HEX_HEADERS:
        why = f"header {header}, no EPC scheme: taken as a house item key"
    else:
        return None
    uri = f"urn:epc:raw:{len(hex_text) * 4}.x{hex_text}"
    return Identity(kind="epc", raw=raw, epc=uri, warnings=(why,))


def _hex(data: bytes) -> tuple[str, str]:
    """(upper-case hex, the raw text kept): hex text as it came, bytes as hex."""
    if len(data) % 2 == 0 and all(b in _HEX for b in data):
        return data.decode("ascii").upper(), data.decode("ascii")
    hex_text = data.hex().upper()
    return hex_text, hex_text


def _from_uri(data: bytes) -> Identity:
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return _unknown(data.hex().upper(), "EPC URI: not ASCII text")
    try:
        if text.startswith("urn:epc:id:"):
            scheme = epc_pure_identity_to_scheme(text)
        elif text.startswith("urn:epc:tag:"):
            scheme = tag_uri_to_tag_encodable(text)
        else:
            return _unknown(text, "EPC URI: expected urn:epc:id:... or urn:epc:tag:...")
    except EPC_ERRORS as exc:
        return _unknown(text, f"EPC URI: {_reason(exc)}")
    return _identity(text, scheme, True)


def _identity(raw: str, scheme: EPCScheme, gln_is_location: bool) -> Identity:
    """GRAI, GIAI, GID and the rest carry their identity in ``epc`` alone."""
    fields: dict[str, Any] = {}
    try:
        element_string = scheme.gs1_element_string() if isinstance(scheme, GS1Element) else None
        if isinstance(scheme, SGTIN):
            fields["gtin"] = scheme.gtin()
            fields["serial"] = replace_uri_escapes(scheme.epc_uri.split(".", 2)[2])
        elif isinstance(scheme, SSCC):
            fields["sscc"] = scheme.gs1_key()
        elif isinstance(scheme, SGLN):
            # An SGLN's extension "0" means none (EPC Tag Data Standard, SGLN).
            gln = scheme.gs1_key()
            extension = replace_uri_escapes(scheme.epc_uri.split(".", 2)[2])
            fields["gln"] = gln
            if gln_is_location:
                fields["location"] = gln_location(gln, None if extension == "0" else extension)
    except EPC_ERRORS as exc:
        return _unknown(raw, f"EPC: {_reason(exc)}")
    return Identity(
        kind="epc", raw=raw, epc=scheme.epc_uri, element_string=element_string, **fields
    )


def _reason(exc: Exception) -> str:
    return getattr(exc, "message", "") or str(exc) or type(exc).__name__


def _unknown(raw: str, error: str) -> Identity:
    return Identity(kind="unknown", raw=raw, error=error)


__all__ = ["EPC_ERRORS", "identify_epc", "raw_tag_key"]
