"""GS1 keys to EPC URIs and back (EPC Tag Data Standard), with no I/O.

An EPC URI splits a GTIN into GS1 Company Prefix and item reference, and the
split is not in the GTIN: it comes from GS1's prefix table, which ``biip``
carries. Where the table does not know the prefix (restricted ranges, GS1-8),
the configured ``company_prefix_length`` decides. ``epcpy`` builds and parses
the URIs, so escaping (``%2F`` in serials) and check digits are its job.

Items with no GS1 key (a SKU only) get a private class URI,
``urn:edgetally:sku:<percent-encoded sku>``, so an EPCIS repository still
counts them; the reference ledger reads it back to the SKU.
"""

from __future__ import annotations

import functools
import re
from typing import Any
from urllib.parse import quote, unquote

from biip import ParseError
from biip.gtin import Gtin
from epcpy.epc_schemes.sgtin import SGTIN
from epcpy.epc_schemes.sscc import SSCC
from epcpy.utils.common import ConvertException
from epcpy.utils.parsers import epc_pure_identity_to_scheme

SKU_CLASS = "urn:edgetally:sku:"
DEFAULT_GCP_LENGTH = 7
# GS1 AI encodable character set 82, and the characters an EPC URI escapes.
_CSET82 = re.compile(r"[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]+")
_ESCAPES = {c: f"%{ord(c):02X}" for c in '"%&/<>?'}
_EPC_ERRORS = (ConvertException, ValueError, TypeError, AttributeError, IndexError, KeyError)


class EpcError(ValueError):
    """A key that cannot be written as (or read from) an EPC URI; the message says why."""


def gcp_length(gtin_or_key: str, default: int = DEFAULT_GCP_LENGTH) -> int:
    """The GS1 Company Prefix length of a GTIN from GS1's table, else ``default``."""
    try:
        prefix = Gtin.parse(gtin_or_key).company_prefix
    except ParseError:
        prefix = None
    length = len(prefix.value) if prefix is not None else default
    return length if 6 <= length <= 12 else default


def _gtin14(gtin: str) -> str:
    if not gtin.isdigit() or len(gtin) not in (8, 12, 13, 14):
        raise EpcError(f"GTIN {gtin!r}: expected 8, 12, 13 or 14 digits")
    return gtin.zfill(14)


def sgtin_uri(gtin: str, serial: str, default_gcp: int = DEFAULT_GCP_LENGTH) -> str:
    """The SGTIN of one unit. The company prefix and item reference come from epcpy;
    the serial is escaped here (TDS: ``" % & / < > ?``), since epcpy's element
    string parser refuses some valid serials (``/0``)."""
    g = _gtin14(gtin)
    if not 1 <= len(serial) <= 20 or not _CSET82.fullmatch(serial):
        raise EpcError(
            f"GTIN {gtin} serial {serial!r}: expected 1 to 20 characters of GS1's set 82"
        )
    try:
        base = _sgtin_base(g, default_gcp)
    except _EPC_ERRORS as exc:
        raise EpcError(f"GTIN {gtin} serial {serial!r}: no SGTIN ({_why(exc)})") from exc
    return base + "".join(_ESCAPES.get(c, c) for c in serial)


@functools.lru_cache(maxsize=4096)
def _sgtin_base(gtin14: str, default_gcp: int) -> str:
    """``urn:epc:id:sgtin:CP.IR.`` of a GTIN. A site has few products and many units,
    and the prefix table and epcpy cost more than the rest of an event together."""
    uri = SGTIN.from_gs1_element_string(f"(01){gtin14}(21)0", gcp_length(gtin14, default_gcp))
    return str(uri.epc_uri)[:-1]


@functools.lru_cache(maxsize=4096)
def _gtin_of(company_prefix: str, item_ref: str) -> str:
    return str(SGTIN(f"urn:epc:id:sgtin:{company_prefix}.{item_ref}.0").gtin())


def lgtin_uri(gtin: str, lot: str, default_gcp: int = DEFAULT_GCP_LENGTH) -> str:
    """A lot's class EPC. Built from the SGTIN of the same GTIN and "serial" ``lot``:
    AI 10 and AI 21 share one character set and one URI escaping (TDS), and
    epcpy's own LGTIN parser refuses escaped lots such as ``A%2F1``."""
    try:
        sgtin = sgtin_uri(gtin, lot, default_gcp)
    except EpcError as exc:
        raise EpcError(f"GTIN {gtin} lot {lot!r}: no LGTIN ({exc})") from exc
    return "urn:epc:class:lgtin:" + sgtin[len("urn:epc:id:sgtin:") :]


def gtin_class_uri(gtin: str, default_gcp: int = DEFAULT_GCP_LENGTH) -> str:
    """The product class as an EPC pattern: ``urn:epc:idpat:sgtin:CP.IR.*``."""
    sgtin = sgtin_uri(gtin, "0", default_gcp)
    return "urn:epc:idpat:sgtin:" + sgtin[len("urn:epc:id:sgtin:") :].rsplit(".", 1)[0] + ".*"


def sscc_uri(sscc: str, default_gcp: int = DEFAULT_GCP_LENGTH) -> str:
    if not sscc.isdigit() or len(sscc) != 18:
        raise EpcError(f"SSCC {sscc!r}: expected 18 digits")
    try:
        # An SSCC's company prefix starts after its extension digit.
        return str(
            SSCC.from_gs1_element_string(f"(00){sscc}", gcp_length(sscc[1:14], default_gcp)).epc_uri
        )
    except _EPC_ERRORS as exc:
        raise EpcError(f"SSCC {sscc}: no EPC ({_why(exc)})") from exc


def sku_class_uri(sku: str) -> str:
    return SKU_CLASS + quote(sku, safe="")


def item_from_epc(uri: str) -> dict[str, Any]:
    """The item fields an instance EPC carries: SGTIN gives gtin + serial, SSCC the sscc."""
    if not uri.startswith("urn:epc:id:"):
        raise EpcError(f"EPC {uri!r}: expected an urn:epc:id:... URI")
    try:
        if uri.startswith("urn:epc:id:sgtin:"):
            # By hand: epcpy reads "%20" inside "%2F0" as an escaped space.
            cp, ir, serial = uri[len("urn:epc:id:sgtin:") :].split(".", 2)
            gtin = _gtin_of(cp, ir)
            return {"gtin": gtin, "serial": _unescape(serial, uri), "epc": uri}
        scheme = epc_pure_identity_to_scheme(uri)
        if isinstance(scheme, SSCC):
            return {"sscc": scheme.gs1_key(), "epc": scheme.epc_uri}
        return {"epc": scheme.epc_uri}
    except _EPC_ERRORS as exc:
        raise EpcError(f"EPC {uri!r}: {_why(exc)}") from exc


def item_from_class(uri: str) -> dict[str, Any]:
    """The item fields a class-level EPC carries: LGTIN gives gtin + lot, a pattern the gtin."""
    try:
        if uri.startswith("urn:epc:class:lgtin:"):
            cp, ir, lot = uri[len("urn:epc:class:lgtin:") :].split(".", 2)
            return {"gtin": _gtin_of(cp, ir), "lot": _unescape(lot, uri)}
        if uri.startswith("urn:epc:idpat:sgtin:") and uri.endswith(".*"):
            cp, ir = uri[len("urn:epc:idpat:sgtin:") : -2].split(".", 1)
            return {"gtin": _gtin_of(cp, ir)}
    except _EPC_ERRORS as exc:
        raise EpcError(f"epcClass {uri!r}: {_why(exc)}") from exc
    if uri.startswith(SKU_CLASS) and len(uri) > len(SKU_CLASS):
        return {"sku": unquote(uri[len(SKU_CLASS) :])}
    raise EpcError(
        f"epcClass {uri!r}: expected urn:epc:class:lgtin:..., urn:epc:idpat:sgtin:CP.IR.* "
        f"or {SKU_CLASS}..."
    )


def _unescape(component: str, uri: str) -> str:
    text = unquote(component)
    if not text or not _CSET82.fullmatch(text):
        raise EpcError(f"EPC {uri!r}: {component!r} is not GS1 set-82 text")
    return text


def _why(exc: BaseException) -> str:
    return getattr(exc, "message", "") or str(exc) or type(exc).__name__
