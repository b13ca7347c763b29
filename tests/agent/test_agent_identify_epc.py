"""EPC tag data -> Identity through epcpy: every scheme a warehouse meets, TIDs,
unknown headers, and the forms readers deliver (binary, hex text, URIs).

The hex vectors are the EPC Tag Data Standard's examples (company prefix
0614141: SGTIN-96 3074257BF7194E4000001A85 is its worked example) and the
same identities in the other schemes.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pytest
from identify_kit import read

from agent.identify import Identifier, IdentifySettings, identify
from agent.identify.epc import raw_tag_key
from agent.model import Identity, Read

SGTIN_96 = "3074257BF7194E4000001A85"
SGTIN_URI = "urn:epc:id:sgtin:0614141.812345.6789"
GTIN = "80614141123458"


def tag(data: bytes, fault: str | None = None) -> Read:
    return read(data, device="portal-1", kind="tag", antenna=1, rssi=-61.5, fault=fault)


def epc(uri: str, hri: str | None, **fields: Any) -> dict[str, Any]:
    return {"kind": "epc", "epc": uri, "element_string": hri, **fields}


# (EPC hex, fields that must be set; the rest must be default; raw is the hex)
SCHEMES: list[tuple[str, dict[str, Any]]] = [
    (SGTIN_96, epc(SGTIN_URI, f"(01){GTIN}(21)6789", gtin=GTIN, serial="6789")),
    (
        "3674257BF7194E60C286BD880000000000000000000000000000",  # SGTIN-198
        epc(
            "urn:epc:id:sgtin:0614141.812345.ABC%2F1",
            f"(01){GTIN}(21)ABC/1",
            gtin=GTIN,
            serial="ABC/1",
        ),
    ),
    (
        "3174257BF4499602D2000000",  # SSCC-96
        epc(
            "urn:epc:id:sscc:0614141.1234567890",
            "(00)106141412345678908",
            sscc="106141412345678908",
        ),
    ),
    (
        "3274257BF460720000000190",  # SGLN-96 with extension 400
        epc(
            "urn:epc:id:sgln:0614141.12345.400",
            "(414)0614141123452(254)400",
            gln="0614141123452",
            location="0614141123452.400",
        ),
    ),
    (
        "3274257BF460720000000000",  # SGLN-96, extension 0: none
        epc(
            "urn:epc:id:sgln:0614141.12345.0",
            "(414)0614141123452(254)0",
            gln="0614141123452",
            location="0614141123452",
        ),
    ),
    (
        "3974257BF46073057C2620000000000000000000000000000000",  # SGLN-195
        epc(
            "urn:epc:id:sgln:0614141.12345.A%2FB1",
            "(414)0614141123452(254)A/B1",
            gln="0614141123452",
            location="0614141123452.A/B1",
        ),
    ),
    (
        "3374257BF40C0E4000000190",  # GRAI-96
        epc("urn:epc:id:grai:0614141.12345.400", "(8003)00614141123452400"),
    ),
    (
        "3774257BF40C0E59B2C2BF1000000000000000000000",  # GRAI-170
        epc("urn:epc:id:grai:0614141.12345.32a%2Fb", "(8003)0061414112345232a/b"),
    ),
    ("3474257BF40000000000162E", epc("urn:epc:id:giai:0614141.5678", "(8004)06141415678")),
    (
        "3874257BF58B266D1AB460C00000000000000000000000000000",  # GIAI-202
        epc("urn:epc:id:giai:0614141.12345400", "(8004)061414112345400"),
    ),
    ("350007AB70425D4000000586", epc("urn:epc:id:gid:31415.271828.1414", None)),  # GID-96
]


def check(got: Identity, expected: dict[str, Any], raw: str) -> None:
    values = asdict(got)
    defaults = asdict(Identity(kind="unknown", raw=""))
    assert values.pop("raw") == raw
    for name, value in values.items():
        if name == "error" and "error" in expected:
            assert value is not None and expected["error"] in value, value
        elif name in expected:
            assert value == expected[name], name
        else:
            assert value == defaults[name], (name, value)


@pytest.mark.parametrize(("hex_epc", "expected"), SCHEMES, ids=[e["epc"] for _, e in SCHEMES])
def test_binary_epc(hex_epc: str, expected: dict[str, Any]) -> None:
    check(identify(tag(bytes.fromhex(hex_epc))), expected, hex_epc)


@pytest.mark.parametrize(("hex_epc", "expected"), SCHEMES, ids=[e["epc"] for _, e in SCHEMES])
def test_hex_text_epc_keeps_the_text_as_raw(hex_epc: str, expected: dict[str, Any]) -> None:
    check(identify(tag(hex_epc.encode())), expected, hex_epc)
    lower = hex_epc.lower()
    check(identify(tag(lower.encode())), expected, lower)


def test_epc_memory_read_in_whole_words_ignores_the_padding() -> None:
    got = identify(tag(bytes.fromhex(SGTIN_96 + "0000")))
    assert (got.kind, got.epc, got.raw) == ("epc", SGTIN_URI, SGTIN_96 + "0000")


def test_epc_uris_as_tag_data_and_as_barcodes() -> None:
    for data in (SGTIN_URI, "urn:epc:tag:sgtin-96:3.0614141.812345.6789"):
        got = identify(tag(data.encode()))
        assert (got.kind, got.epc, got.gtin, got.serial, got.raw) == (
            "epc",
            SGTIN_URI,
            GTIN,
            "6789",
            data,
        )
    printed = Read(
        id="r",
        device="scanner-1",
        kind="barcode",
        data=f"]Q1{SGTIN_URI}".encode(),
        observed_at="t",
        mono_ns=1,
        boot_id="b",
    )
    got = identify(printed)
    assert (got.kind, got.epc, got.raw) == ("epc", SGTIN_URI, f"]Q1{SGTIN_URI}")


def test_item_of_an_sgtin_keeps_on_hand_per_gtin() -> None:
    item = identify(tag(bytes.fromhex(SGTIN_96))).item()
    assert item.to_dict() == {"gtin": GTIN, "serial": "6789", "epc": SGTIN_URI}
    assert item.key() == GTIN
    pallet = identify(tag(bytes.fromhex("3174257BF4499602D2000000"))).item()
    assert pallet.to_dict() == {
        "sscc": "106141412345678908",
        "epc": "urn:epc:id:sscc:0614141.1234567890",
    }
    asset = identify(tag(bytes.fromhex("3474257BF40000000000162E"))).item()
    assert asset.key() == "urn:epc:id:giai:0614141.5678"


# (tag data, raw kept, the reason)
NOT_EPC: list[tuple[bytes, str, str]] = [
    (
        bytes.fromhex("E2801160600002054CC2096F"),
        "E2801160600002054CC2096F",
        "a TID (EPCglobal class id E2), not an EPC",
    ),
    (b"E2003412012345678901", "E2003412012345678901", "a TID (EPCglobal class id E2)"),
    (bytes.fromhex("E0040150A1B2C3D4"), "E0040150A1B2C3D4", "class id E0"),
    (bytes(12), "000000000000000000000000", "header 00: an unprogrammed tag"),
    (bytes.fromhex("FF" * 12), "FF" * 12, "header FF: no EPC scheme uses it"),
    (bytes.fromhex("30"), "30", "EPC: Invalid binary size"),
    (b"30", "30", "EPC: Invalid binary size"),
    (b"307", "333037", "EPC: Invalid binary size"),  # odd-length text: taken as bytes
    (bytes.fromhex("3674257BF7194E4000001A85"), "3674257BF7194E4000001A85", "Invalid binary"),
    (b"urn:epc:id:sgtin:1", "urn:epc:id:sgtin:1", "EPC URI: Invalid SGTIN URI"),
    (b"urn:epc:id:foo:1", "urn:epc:id:foo:1", "EPC URI: Unknown EPC URI"),
    (b"urn:epc:pat:sgtin-96:3.*", "urn:epc:pat:sgtin-96:3.*", "expected urn:epc:id:"),
    (b"urn:epc:\xff", "75726e3a6570633aff".upper(), "EPC URI: not ASCII text"),
    (b"0" * 200, "0" * 200, "EPC: longer than 64 bytes"),
    (bytes([0x30, 0x99]) * 100, "3099" * 100, "EPC: longer than 64 bytes"),
]


@pytest.mark.parametrize(("data", "raw", "reason"), NOT_EPC)
def test_what_is_not_an_epc_is_unknown_with_the_hex_kept(
    data: bytes, raw: str, reason: str
) -> None:
    got = identify(tag(data))
    check(got, {"kind": "unknown", "error": reason}, raw)


def test_a_faulted_or_empty_tag_read_is_unknown() -> None:
    got = identify(tag(bytes.fromhex(SGTIN_96), fault="CRC error"))
    assert (got.kind, got.error) == ("unknown", "CRC error")
    assert identify(tag(b"")).error == "empty read"


def test_the_cache_gives_the_same_identity_and_stays_bounded() -> None:
    identifier = Identifier(IdentifySettings(), epc_cache=8)
    first = identifier.identify(tag(bytes.fromhex(SGTIN_96)))
    for serial in range(50):  # more distinct tags than the cache holds
        data = f"urn:epc:id:sgtin:0614141.812345.{serial}".encode()
        assert identifier.identify(tag(data)).serial == str(serial)
    again = identifier.identify(tag(bytes.fromhex(SGTIN_96)))
    assert again == first == identify(tag(bytes.fromhex(SGTIN_96)))


def test_sgln_without_gln_locations_keeps_the_gln_only() -> None:
    off = Identifier(IdentifySettings(gln_is_location=False))
    got = off.identify(tag(bytes.fromhex("3274257BF460720000000190")))
    assert (got.kind, got.gln, got.location) == ("epc", "0614141123452", None)


# What raw_tag_ids accepts of NOT_EPC: TIDs and headers no EPC scheme uses, never a
# GS1 header that failed to decode, an unprogrammed tag, a URI or an over-long read.
RAW_KEYS = {
    "E2801160600002054CC2096F": "urn:epc:raw:96.xE2801160600002054CC2096F",
    "E2003412012345678901": "urn:epc:raw:80.xE2003412012345678901",
    "E0040150A1B2C3D4": "urn:epc:raw:64.xE0040150A1B2C3D4",
    "FF" * 12: f"urn:epc:raw:96.x{'FF' * 12}",
}


@pytest.mark.parametrize(("data", "raw", "reason"), NOT_EPC)
def test_raw_tag_keys_are_tids_and_non_gs1_headers_only(data: bytes, raw: str, reason: str) -> None:
    got = raw_tag_key(data)
    if raw not in RAW_KEYS:
        assert got is None
        return
    assert got is not None
    assert (got.kind, got.raw, got.epc) == ("epc", raw, RAW_KEYS[raw])
    assert got.item().key() == RAW_KEYS[raw]  # the ledger keeps on-hand per tag
    assert "house item key" in got.warnings[0]
    assert raw_tag_key(bytes.fromhex(SGTIN_96)) is None  # a GS1 EPC is never raw
