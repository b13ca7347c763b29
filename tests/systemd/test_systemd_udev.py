"""The udev rules: well-formed, and giving the service's group exactly the scanners.

No udev runs here (and Debian 12's udevadm has no `verify`), so the rules are
parsed with udev's own grammar: comma-separated KEY[{attr}]OP"value" pairs,
match operators == and !=, assignments = += := (udev(7)). A typo in a key or
a quote fails here instead of being skipped silently by udevd at boot.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "systemd" / "99-edgetally-scanners.rules"
UNIT = ROOT / "systemd" / "edgetally.service"

PAIR = re.compile(
    r'\s*([A-Z_]+)(?:\{([^}]+)\})?\s*(==|!=|\+=|-=|:=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)'
)
MATCH_KEYS = {"ACTION", "SUBSYSTEM", "SUBSYSTEMS", "KERNEL", "ENV", "ATTR", "ATTRS", "DRIVERS"}
ASSIGN_KEYS = {"GROUP", "MODE", "SYMLINK", "ENV", "GOTO", "LABEL", "TAG"}
VENDORS = {"05e0", "0c2e", "05f9", "1eab"}


def rules() -> list[list[tuple[str, str | None, str, str]]]:
    out = []
    for number, raw in enumerate(RULES.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pairs, pos = [], 0
        while pos < len(line):
            m = PAIR.match(line, pos)
            assert m, f"{RULES.name}:{number}: not udev syntax at column {pos + 1}: {line[pos:]!r}"
            key, attr, op, value, _ = m.groups()
            is_match = op in ("==", "!=")
            known = MATCH_KEYS if is_match else ASSIGN_KEYS
            assert key in known, f"{RULES.name}:{number}: {key}{op} is not a udev key here"
            pairs.append((key, attr, op, value))
            pos = m.end()
        out.append(pairs)
    return out


def test_every_line_parses_and_gotos_reach_their_label() -> None:
    parsed = rules()
    labels = {v for rule in parsed for k, _, _, v in rule if k == "LABEL"}
    gotos = {v for rule in parsed for k, _, _, v in rule if k == "GOTO"}
    assert gotos and gotos <= labels


def test_the_group_is_the_units_scanner_group_and_never_world_access() -> None:
    unit_groups = re.findall(r"^SupplementaryGroups=(.+)$", UNIT.read_text(), re.M)
    assert unit_groups == ["edgetally-scanners"]
    granting = [r for r in rules() if any(k == "GROUP" for k, *_ in r)]
    assert len(granting) == 3  # wedge, serial, HID POS
    for rule in granting:
        values = {k: v for k, _, op, v in rule if op in ("=", ":=")}
        assert values["GROUP"] == "edgetally-scanners"
        assert values["MODE"] == "0660"


def test_only_scanner_vendors_are_marked_and_others_skip_everything() -> None:
    parsed = rules()
    marker = next(r for r in parsed if ("ENV", "EDGETALLY_SCANNER", "=", "1") in r)
    vendor = next(v for k, a, op, v in marker if k == "ATTRS" and a == "idVendor")
    assert set(vendor.split("|")) == VENDORS
    skip = parsed.index(marker) + 1
    assert ("ENV", "EDGETALLY_SCANNER", "!=", "1") in parsed[skip]
    assert ("GOTO", None, "=", "edgetally_end") in parsed[skip]
    first_grant = next(i for i, r in enumerate(parsed) if any(k == "GROUP" for k, *_ in r))
    assert first_grant > skip


def test_serial_scanners_are_hidden_from_modemmanager_and_get_stable_links() -> None:
    tty = next(r for r in rules() if ("SUBSYSTEM", None, "==", "tty") in r)
    assert ("ENV", "ID_MM_DEVICE_IGNORE", "=", "1") in tty
    links = [v for k, _, op, v in tty if k == "SYMLINK"]
    assert links and links[0].startswith("edgetally/serial-")
    wedge = next(r for r in rules() if ("SUBSYSTEM", None, "==", "input") in r)
    assert ("KERNEL", None, "==", "event*") in wedge
    assert any(k == "SYMLINK" and v.startswith("edgetally/wedge-") for k, _, _, v in wedge)
