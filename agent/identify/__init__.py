"""Raw read data -> Identity. Pure functions, no I/O (DESIGN §1).

The order a barcode is looked at: the driver's fault, limits, UTF-8, control
characters; then command cards; then location labels; then, when the AIM
symbology id says GS1 (``]E0``, ``]C1``, ``]d2``...), GS1 alone; otherwise the
site's SKU patterns, then an EPC URI, then the GS1 guess by shape. Tag reads go
to the EPC decoder. Nothing raises: what cannot be read is an ``unknown`` with
a reason, and the rules signal it bad.
"""

from __future__ import annotations

import dataclasses
import functools
import re

from agent.identify.commands import argument_problem, parse_command
from agent.identify.epc import identify_epc
from agent.identify.gs1 import ELEMENT_SYMBOLOGIES, GTIN_SYMBOLOGIES, identify_gs1
from agent.identify.location import parse_location
from agent.identify.settings import IdentifySettings, compile_patterns
from agent.model import Identity, Read

MAX_DATA = 4096
MAX_SKU = 64
# Distinct tags an RFID portal or shelf re-reads within a few seconds. Measured
# on the dev box: a hit costs ~0.1 µs, decoding an SGTIN-96 through epcpy ~17 µs.
EPC_CACHE = 4096
_GS1_SYMBOLOGIES = ELEMENT_SYMBOLOGIES | GTIN_SYMBOLOGIES
# ISO/IEC 15424 AIM id at the head of the data, for drivers that leave it there
# (drivers/framing.py splits it off into Read.symbology when it can).
_AIM_RE = re.compile(r"\][A-Za-z][0-9A-Za-z]")
_CONTROL_RE = re.compile(r"[\x00-\x1c\x1e\x1f\x7f]")  # every C0 control but GS, and DEL


class Identifier:
    """``identify`` with one site's settings: SKU patterns compiled once, and a
    bounded cache of decoded EPCs owned by this instance (no global state)."""

    def __init__(self, settings: IdentifySettings | None = None, epc_cache: int = EPC_CACHE):
        self.settings = settings if settings is not None else IdentifySettings()
        self._sku = compile_patterns(self.settings.sku_patterns)
        self._epc = functools.lru_cache(maxsize=epc_cache)(
            functools.partial(identify_epc, gln_is_location=self.settings.gln_is_location)
        )

    def identify(self, read: Read) -> Identity:
        """What a read means. Never raises: anything unreadable is an ``unknown`` with a reason."""
        data = read.data
        if read.fault is not None:
            return _unknown(_shown(data), read.fault)
        if not data:
            return _unknown("", "empty read")
        if len(data) > MAX_DATA:
            return _unknown(data[:64].hex(), f"read longer than {MAX_DATA} bytes")
        if read.kind == "tag":
            return self._epc(data)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return _unknown(data.hex(), "not UTF-8 text")
        if _CONTROL_RE.search(text):
            return _unknown(text, "control characters in the data")
        symbology, body = read.symbology, text
        if symbology is None and _AIM_RE.match(text):
            symbology, body = text[:3], text[3:]
        for found in (parse_command(body), parse_location(body, self.settings.location_prefix)):
            if found is not None:
                return found if body is text else dataclasses.replace(found, raw=text)
        if symbology in _GS1_SYMBOLOGIES:
            gs1 = identify_gs1(text, body, symbology, self.settings)
            return gs1 or _unknown(text, f"not GS1 data, though the symbology is {symbology}")
        sku = self._sku_match(text, body)
        if sku is not None:
            return sku
        if body.startswith("urn:epc:"):
            return dataclasses.replace(identify_epc(body.encode("utf-8")), raw=text)
        gs1 = identify_gs1(text, body, symbology, self.settings)
        if gs1 is not None:
            return gs1
        if symbology is None:
            return _unknown(text, "not a GS1 code or a command")
        return _unknown(
            text, f"not a GS1 code or a command (symbology {symbology} carries no GS1 data)"
        )

    def _sku_match(self, text: str, body: str) -> Identity | None:
        for pattern in self._sku:
            if pattern.fullmatch(body):
                problem = argument_problem(body, MAX_SKU)
                if problem is not None:
                    return _unknown(text, f"SKU pattern {pattern.pattern!r} matched, but {problem}")
                return Identity(kind="sku", raw=text, sku=body)
        return None


# Without a cache, so the module holds no state that changes.
_DEFAULT = Identifier(epc_cache=0)


def identify(read: Read, settings: IdentifySettings | None = None) -> Identity:
    """What a read means, with ``settings`` or the defaults. A caller that identifies
    many reads with its own settings should keep an ``Identifier``: this one
    compiles the SKU patterns on every call."""
    if settings is None:
        return _DEFAULT.identify(read)
    return Identifier(settings, epc_cache=0).identify(read)


def _shown(data: bytes) -> str:
    """Text as is when it is text, else hex: kept as evidence, never cleaned."""
    try:
        return data[:MAX_DATA].decode("utf-8")
    except UnicodeDecodeError:
        return data[:MAX_DATA].hex()


def _unknown(raw: str, error: str) -> Identity:
    return Identity(kind="unknown", raw=raw, error=error)


__all__ = ["MAX_DATA", "Identifier", "IdentifySettings", "identify"]
