"""GS1 through biip: bare GTINs and SSCCs, element strings, HRI and Digital Link.

Pure: text in, Identity out. The AIM symbology id decides what the data may
be when the scanner sends one (``]E0`` EAN/UPC holds a GTIN only, ``]C1`` /
``]d2`` / ``]Q3`` / ``]e0`` hold element strings even without parentheses,
``]C0`` plain Code 128 holds no GS1 data at all); without one, the shape of
the data decides, as before.

Dates: ``expiry`` is AI 17 (expiry); without it, AI 15 (best before), the date
stock is rotated by on food. AI 16 (sell by) never becomes the expiry: it is
the shop's date, not the item's. Every date AI is kept in ``dates``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import biip
from biip.gs1_digital_link_uris import GS1DigitalLinkURI
from biip.gs1_element_strings import GS1ElementString, GS1ElementStrings
from biip.gs1_messages import GS1Message
from biip.gtin import Gtin
from biip.sscc import Sscc
from biip.upc import Upc

from agent.identify.location import gln_location
from agent.identify.separators import lost_separators
from agent.identify.settings import IdentifySettings
from agent.model import Identity

GS = "\x1d"
CONFIG = biip.ParseConfig(separator_chars=[GS])
# AIM ids (ISO/IEC 15424) of the GS1 symbologies that carry element strings:
# GS1-128, GS1 DataBar and Composite, GS1 DataMatrix, GS1 QR, GS1 DotCode.
ELEMENT_SYMBOLOGIES = frozenset({"]C1", "]e0", "]e1", "]e2", "]d2", "]Q3", "]J1"})
# EAN-13/UPC-A/UPC-E, EAN-13 with add-on, EAN-8, ITF-14: a GTIN and nothing else.
GTIN_SYMBOLOGIES = frozenset({"]E0", "]E3", "]E4", "]I1"})
_GTIN_LENGTHS = (8, 12, 13, 14)
_DATE_AIS = ("11", "13", "15", "16", "17")
_MEASURE_PREFIXES = ("31", "32", "33", "34", "35", "36")
# biip's complaints, and the ValueError/IndexError it lets through on odd data
# (a bare "]", a "]Y" system-expansion id without its digit).
BIIP_ERRORS = (biip.ParseError, ValueError, IndexError)


def identify_gs1(
    raw: str, body: str, symbology: str | None, settings: IdentifySettings
) -> Identity | None:
    """The GS1 identity in ``body``; an unknown when it is GS1 gone wrong; None when
    it is not GS1 at all. ``raw`` is what the Identity keeps as evidence."""
    if body[:1] == GS:  # FNC1 in first position, sent as GS by some scanners: GS1 for sure
        return _element_string(raw, body[1:], settings, guessed=False)
    if body[:4].lower() == "http":
        return _digital_link(raw, body, settings)
    if symbology in GTIN_SYMBOLOGIES:
        return _bare_gtin(raw, body, symbology)
    if body.startswith("("):
        return _hri(raw, body, settings)
    if symbology in ELEMENT_SYMBOLOGIES:
        return _element_string(raw, body, settings, guessed=False)
    if symbology is not None:
        return None  # a symbology that carries no GS1 data (]C0, ]A0, ]Q1...)
    if body.isascii() and body.isdigit():
        if len(body) in _GTIN_LENGTHS:
            return _bare_gtin(raw, body, None)
        if len(body) == 18:
            try:
                sscc = Sscc.parse(body, config=CONFIG).value
            except BIIP_ERRORS as exc:
                return _unknown(raw, f"GS1: {exc}")
            return Identity(kind="sscc", raw=raw, sscc=sscc, element_string=f"(00){sscc}")
    if body[:2].isascii() and body[:2].isdigit():
        return _element_string(raw, body, settings, guessed=True)
    return None


def _bare_gtin(raw: str, body: str, symbology: str | None) -> Identity:
    warnings: tuple[str, ...] = ()
    digits = body
    if symbology == "]E3" and len(body) in (15, 18):
        digits, addon = body[:13], body[13:]
        warnings = (f"EAN add-on {addon!r} not kept",)
    if not (digits.isascii() and digits.isdigit()):
        return _unknown(raw, f"GS1: a {symbology} code holds digits only, got {body!r}")
    try:
        if symbology == "]E0" and len(digits) == 8:
            digits = Upc.parse(digits, config=CONFIG).as_upc_a()  # UPC-E (EAN-8 is ]E4)
        gtin = Gtin.parse(digits, config=CONFIG).as_gtin_14()
    except BIIP_ERRORS as exc:
        return _unknown(raw, f"GS1: {exc}")
    return Identity(
        kind="gtin", raw=raw, gtin=gtin, element_string=f"(01){gtin}", warnings=warnings
    )


def _hri(raw: str, body: str, settings: IdentifySettings) -> Identity:
    # biip drops every whitespace character in HRI ("".join(value.split())), so
    # "(10)AB C" would silently become lot "ABC": refuse instead.
    if any(ch.isspace() for ch in body):
        return _unknown(raw, "GS1 HRI: whitespace or a GS inside '(AI)value' text")
    try:
        message = GS1Message.parse_hri(body, config=CONFIG)
    except BIIP_ERRORS as exc:
        return _unknown(raw, f"GS1 HRI: {exc}")
    return _from_elements(raw, message.element_strings, settings, ())


def _digital_link(raw: str, body: str, settings: IdentifySettings) -> Identity:
    try:
        uri = GS1DigitalLinkURI.parse(body, config=CONFIG)
    except BIIP_ERRORS as exc:
        return _unknown(raw, f"not a GS1 Digital Link URI: {exc}")
    return _from_elements(raw, uri.element_strings, settings, ())


def _element_string(raw: str, body: str, settings: IdentifySettings, guessed: bool) -> Identity:
    try:
        elements = GS1Message.parse(body, config=CONFIG).element_strings
    except BIIP_ERRORS as exc:
        if guessed and not _starts_as_gs1(body):
            return _unknown(raw, f"not a GS1 code or a command (as GS1: {exc})")
        return _unknown(raw, f"GS1: {exc}")
    warnings = lost_separators(body, elements, CONFIG)
    if warnings and settings.missing_separator == "reject":
        return _unknown(raw, f"GS1: {warnings[0]}", warnings=warnings)
    return _from_elements(raw, elements, settings, warnings)


def _starts_as_gs1(body: str) -> bool:
    """Whether the data opens with a valid element string: then a later fault is a
    broken GS1 code, not some other code that happens to start with digits."""
    try:
        GS1ElementString.extract(body, config=CONFIG)
    except BIIP_ERRORS:
        return False
    return True


def _from_elements(
    raw: str,
    elements: Sequence[GS1ElementString],
    settings: IdentifySettings,
    warnings: tuple[str, ...],
) -> Identity:
    """Element strings -> Identity: the key decides the kind (GTIN, SSCC, GLN)."""
    seen: dict[str, str] = {}
    for element in elements:
        ai = element.ai.ai
        if seen.setdefault(ai, element.value) != element.value:
            return _unknown(
                raw,
                f"GS1: AI {ai} twice with different values ({seen[ai]!r}, {element.value!r})",
                warnings=warnings,
            )
    hri = GS1Message.from_element_strings(GS1ElementStrings(elements)).as_hri()
    found: dict[str, Any] = {}
    dates: list[tuple[str, str]] = []
    measures: list[tuple[str, str]] = []
    for element in elements:
        ai = element.ai.ai
        error = element.gtin_error or element.sscc_error or element.gln_error
        if error is not None:
            return _unknown(raw, f"GS1: AI {ai}: {error}", warnings=warnings)
        if ai in ("01", "02") and element.gtin is not None:
            found["gtin"] = element.gtin.as_gtin_14()
        elif ai == "00" and element.sscc is not None:
            found["sscc"] = element.sscc.value
        elif ai == "10":
            found["lot"] = element.value
        elif ai == "21":
            found["serial"] = element.value
        elif ai in _DATE_AIS and element.date is not None:
            dates.append((ai, element.date.isoformat()))
        elif ai in ("30", "37"):
            if not (element.value.isascii() and element.value.isdigit()):  # biip allows ""
                return _unknown(raw, f"GS1: AI {ai} needs a count, got {element.value!r}")
            found.setdefault("qty", int(element.value))
        elif ai[:2] in _MEASURE_PREFIXES and element.decimal is not None:
            measures.append((ai, str(element.decimal)))
        elif ai == "414" and element.gln is not None:
            found["gln"] = element.gln.value
    if found.get("qty") == 0:
        return _unknown(raw, f"GS1: a count of 0 (AI 30/37) in {hri}", warnings=warnings)
    by_ai = dict(dates)
    expiry = by_ai.get("17") or by_ai.get("15")
    detail: dict[str, Any] = {
        "raw": raw,
        "element_string": hri,
        "warnings": warnings,
        "dates": tuple(dates),
        "measures": tuple(measures),
        "expiry": expiry,
        **found,
    }
    if "gtin" in found:
        return Identity(kind="gtin", **detail)
    if "sscc" in found:
        return Identity(kind="sscc", **detail)
    if "gln" in found:
        if not settings.gln_is_location:
            return _unknown(
                raw,
                f"GS1 location label {hri} while identify.gln_is_location is off",
                warnings=warnings,
            )
        extension = seen.get("254")
        return Identity(kind="location", location=gln_location(found["gln"], extension), **detail)
    return _unknown(raw, f"GS1 data without a GTIN, SSCC or location GLN: {hri}", warnings=warnings)


def _unknown(raw: str, error: str, warnings: tuple[str, ...] = ()) -> Identity:
    return Identity(kind="unknown", raw=raw, error=error, warnings=warnings)


__all__ = ["BIIP_ERRORS", "ELEMENT_SYMBOLOGIES", "GTIN_SYMBOLOGIES", "identify_gs1"]
