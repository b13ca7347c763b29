"""drivers/llrp_emulator.py: the scenario model (timeline) and loading, without sockets."""

from __future__ import annotations

import dataclasses
import statistics
from collections import Counter
from pathlib import Path

import pytest

from agent.errors import ConfigError
from drivers.llrp_emulator import (
    QUIRKS,
    Observation,
    Scenario,
    bundled_scenario,
    load_scenario,
    scenario_from_dict,
    sgtin96,
    timeline,
)

SIDES = {1: "outside", 2: "outside", 3: "inside", 4: "inside"}


def scenario(name: str, **changes: object) -> Scenario:
    return dataclasses.replace(load_scenario(bundled_scenario(name)), **changes)  # type: ignore[arg-type]


def reads_by_side(obs: list[Observation]) -> Counter[str]:
    out: Counter[str] = Counter()
    for o in obs:
        out[SIDES[o.antenna]] += o.count
    return out


def peak_time(obs: list[Observation], side: str) -> float:
    """Per tag, when its strongest read on that side happened (window midpoints); the median."""
    best: dict[bytes, Observation] = {}
    for o in obs:
        if SIDES[o.antenna] == side and (o.epc not in best or o.rssi > best[o.epc].rssi):
            best[o.epc] = o
    return statistics.median((o.first_seen_s + o.last_seen_s) / 2 for o in best.values())


def windows(s: Scenario, t1: float, step: float) -> list[Observation]:
    out: list[Observation] = []
    t = 0.0
    while t < t1:
        out += timeline(s, t, t + step)
        t += step
    return out


@pytest.mark.parametrize(
    ("name", "first"), [("portal-inbound", "outside"), ("portal-outbound", "inside")]
)
def test_a_pass_is_read_on_the_side_it_comes_from_first(name: str, first: str) -> None:
    s = scenario(name)
    obs = windows(s, 12.0, 0.25)
    other = "inside" if first == "outside" else "outside"
    assert {o.epc for o in obs} == {e for g in s.tags for e in g.epcs}  # every tag is read
    assert peak_time(obs, first) + 1.0 < peak_time(obs, other)
    first_seen = {
        side: min(o.first_seen_s for o in obs if SIDES[o.antenna] == side)
        for side in SIDES.values()
    }
    assert first_seen[first] < first_seen[other]


def test_parked_tags_are_read_mostly_on_their_own_side() -> None:
    counts = reads_by_side(timeline(scenario("portal-crossread"), 0.0, 30.0))
    assert counts["inside"] > 0  # cross-reads happen…
    assert counts["outside"] > 10 * counts["inside"]  # …but the near side dominates


def test_shelf_tags_stay_on_their_shelf_and_leaving_tags_stop_being_read() -> None:
    s = scenario("zone-shelf")
    picked = set(s.tags[2].epcs)
    before = timeline(s, 0.0, 19.0)
    after = timeline(s, 60.0, 90.0)
    assert {o.epc for o in before} >= picked
    assert not picked & {o.epc for o in after}
    shelf_b = set(s.tags[1].epcs)
    assert {o.antenna for o in after if o.epc in shelf_b} == {2}


def test_same_seed_same_reads_any_window_split_and_another_seed_differs() -> None:
    s = scenario("portal-inbound", rate=5.0)

    def totals(obs: list[Observation]) -> Counter[tuple[bytes, int]]:
        c: Counter[tuple[bytes, int]] = Counter()
        for o in obs:
            c[o.epc, o.antenna] += o.count
        return c

    whole = timeline(s, 0.0, 10.0)
    assert whole == timeline(s, 0.0, 10.0)
    assert totals(whole) == totals(windows(s, 10.0, 0.37))
    assert totals(whole) != totals(timeline(dataclasses.replace(s, seed=2), 0.0, 10.0))


def test_rate_scales_the_number_of_reads() -> None:
    slow = sum(o.count for o in timeline(scenario("portal-inbound", rate=2.0), 0.0, 10.0))
    fast = sum(o.count for o in timeline(scenario("portal-inbound", rate=20.0), 0.0, 10.0))
    assert 7 * slow < fast < 13 * slow


def test_sgtin96_matches_the_tag_data_standard_example() -> None:
    # GS1 TDS: urn:epc:tag:sgtin-96:3.0614141.812345.6789 → 3074257BF7194E4000001A85
    assert sgtin96("80614141123458", 6789, 7, 3).hex().upper() == "3074257BF7194E4000001A85"


def test_bundled_scenarios_load_with_a_200_tag_pallet_for_the_portals() -> None:
    for name in ("portal-inbound", "portal-outbound", "portal-crossread"):
        assert sum(len(g.epcs) for g in scenario(name).tags) == 200
    assert scenario("flood").flood is not None
    assert load_scenario(bundled_scenario("zone-shelf")).antennas[1].group == "shelf-B"


@pytest.mark.parametrize(
    ("obj", "key", "expected"),
    [
        ({"antennas": []}, "antennas", "at least one antenna"),
        ({"antennas": [{"id": 1, "group": "dock"}]}, "antennas[0].x", "position"),
        ({"antennas": [{"id": 1, "group": "outside"}], "speed": "fast"}, "speed", "a number"),
        ({"antennas": [{"id": 1, "group": "outside"}], "colour": 1}, "colour", "unknown key"),
        (
            {"antennas": [{"id": 1, "group": "outside"}], "tags": [{"epcs": ["xyz0"]}]},
            "tags[0].epcs[0]",
            "hex digits",
        ),
        (
            {"antennas": [{"id": 1, "group": "outside"}], "tags": [{"gtin": "123", "count": 2}]},
            "tags[0].gtin",
            "GTIN-14",
        ),
        (
            {
                "antennas": [{"id": 1, "group": "outside"}],
                "tags": [{"epcs": ["0011"], "motion": "parked", "near": "inside"}],
            },
            "tags[0].near",
            "antenna groups",
        ),
        (
            {"antennas": [{"id": 1, "group": "outside"}], "faults": {"malformed": "nasty"}},
            "faults.malformed",
            "one of",
        ),
        (
            {"antennas": [{"id": 1, "group": "outside"}], "quirks": ["tid-epc"]},
            "quirks",
            "unknown quirk 'tid-epc' (did you mean 'tid-epcs'?)",
        ),
        ({"antennas": [{"id": 1, "group": "outside"}], "quirks": "all"}, "", ""),
        (
            {"antennas": [{"id": 1, "group": "outside"}], "faults": {"unsupported": ["ADD"]}},
            "faults.unsupported",
            "LLRP request names",
        ),
    ],
)
def test_bad_scenarios_name_the_key_and_the_expectation(
    obj: object, key: str, expected: str
) -> None:
    if not key:  # the control: this one is fine
        assert scenario_from_dict(obj, "ok.toml").quirks == frozenset(QUIRKS)
        return
    with pytest.raises(ConfigError) as info:
        scenario_from_dict(obj, "bad.toml")
    assert info.value.file == "bad.toml"
    assert info.value.key == key
    assert expected in info.value.expected


def test_json_scenarios_load_too(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(
        '{"antennas": [{"id": 1, "group": "outside"}], "tags": [{"epcs": ["00ff00ff"], "motion": "shelf", "near": "outside"}]}'
    )
    s = load_scenario(path)
    assert s.name == "s"
    assert [o.epc for o in timeline(s, 0.0, 1.0)] == [bytes.fromhex("00ff00ff")]
    bad = tmp_path / "b.toml"
    bad.write_text("antennas = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_scenario(bad)
