"""IdentifySettings and Identifier: a site's location prefix, GLN policy and house
SKU patterns, checked at start-up, and the order codes are looked at."""

from __future__ import annotations

import dataclasses

import pytest
from identify_kit import read

from agent.identify import Identifier, IdentifySettings, identify


def test_every_setting_has_help_text_and_a_default() -> None:
    for spec in dataclasses.fields(IdentifySettings):
        assert spec.metadata.get("help"), spec.name
    assert IdentifySettings() == IdentifySettings(
        location_prefix="LOC:", gln_is_location=True, sku_patterns=[], missing_separator="reject"
    )


@pytest.mark.parametrize(
    ("patterns", "named"),
    [
        (["SKU-[0-9]+", "ABC(["], "sku_patterns[1]: 'ABC([' is not a valid regular expression"),
        (["*x"], "sku_patterns[0]: '*x'"),
    ],
)
def test_a_pattern_that_does_not_compile_is_a_value_error_naming_it(
    patterns: list[str], named: str
) -> None:
    with pytest.raises(ValueError, match="sku_patterns") as info:
        IdentifySettings(sku_patterns=patterns)
    assert named in str(info.value)


@pytest.mark.parametrize(
    ("prefix", "why"),
    [
        ("", "1..16 printable characters"),
        ("LOC\x1d", "1..16 printable characters"),
        ("L" * 17, "1..16 printable characters"),
        ("PO:", "collide with the PO command"),
        ("P", "collide with the PAIR command"),
        ("END", "collide with the END command"),
        ("QTY:A", "collide with the QTY command"),
    ],
)
def test_a_location_prefix_that_cannot_work_is_refused(prefix: str, why: str) -> None:
    with pytest.raises(ValueError, match="location_prefix") as info:
        IdentifySettings(location_prefix=prefix)
    assert why in str(info.value)


def test_a_site_prefix_for_location_labels() -> None:
    site = Identifier(IdentifySettings(location_prefix="@"))
    got = site.identify(read("@R12-S3"))
    assert (got.kind, got.location, got.raw) == ("location", "R12-S3", "@R12-S3")
    # the default prefix means nothing at this site
    assert site.identify(read("LOC:A-01")).kind == "unknown"
    # module-level identify takes the same settings
    assert identify(read("@R12-S3"), IdentifySettings(location_prefix="@")).location == "R12-S3"


SITE = Identifier(IdentifySettings(sku_patterns=[r"SKU-[0-9]{4,8}", r"[0-9]{8}", r".{70}"]))


@pytest.mark.parametrize(
    ("data", "symbology", "kind", "value"),
    [
        ("SKU-12345", None, "sku", "SKU-12345"),
        ("SKU-12345", "]C0", "sku", "SKU-12345"),
        ("]A0SKU-12345", None, "sku", "SKU-12345"),
        ("SKU-1", None, "unknown", None),  # full match: too short for the pattern
        ("xSKU-12345", None, "unknown", None),
        # 8 digits that are also a valid GTIN-8: the site's pattern wins when the
        # scanner does not say EAN...
        ("96385074", None, "sku", "96385074"),
        ("96385074", "]C0", "sku", "96385074"),
        # ...and the symbology wins when it does
        ("96385074", "]E4", "gtin", "00000096385074"),
        # commands and location labels come before SKU patterns
        ("PO:12345678", None, "command", None),
        ("LOC:12345678", None, "location", "12345678"),
    ],
)
def test_house_skus(data: str, symbology: str | None, kind: str, value: str | None) -> None:
    got = SITE.identify(read(data, symbology))
    assert got.kind == kind, got
    assert got.raw == data
    if kind == "sku":
        assert got.sku == value and got.item().key() == value
    if kind == "gtin":
        assert got.gtin == value
    if kind == "location":
        assert got.location == value


def test_a_sku_pattern_that_matches_a_huge_code_does_not_make_a_huge_sku() -> None:
    got = SITE.identify(read("X" * 70))
    assert got.kind == "unknown"
    assert got.error is not None and "expected at most 64 characters" in got.error
    assert ".{70}" in got.error


def test_without_sku_patterns_those_codes_are_gs1_or_unknown() -> None:
    assert identify(read("96385074")).kind == "gtin"
    plain = identify(read("SKU-12345"))
    assert plain.kind == "unknown" and plain.error == "not a GS1 code or a command"


def test_the_read_symbology_and_an_aim_id_in_the_data_agree() -> None:
    separate = identify(read("0109506000134352", "]C1"))
    inline = identify(read("]C10109506000134352"))
    assert separate.gtin == inline.gtin == "09506000134352"
    assert (separate.raw, inline.raw) == ("0109506000134352", "]C10109506000134352")
