"""agent/clock.py: UUIDv7 ids stay strictly increasing whatever the wall clock does."""

from __future__ import annotations

import itertools
import re
import uuid
from pathlib import Path

from agent.clock import Clock, Uuid7, read_boot_id, utc_iso

T0 = 1_780_000_000.0  # 2026-05-28, exactly representable
LOWER_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class Wall:
    """A wall clock the test sets by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def timestamp_ms(u: uuid.UUID) -> int:
    return u.int >> 80


def assert_strictly_increasing(ids: list[uuid.UUID]) -> None:
    ints = [u.int for u in ids]
    assert all(a < b for a, b in itertools.pairwise(ints))
    texts = [str(u) for u in ids]
    assert all(a < b for a, b in itertools.pairwise(texts)), "text order = id order"


def test_ids_are_version_7_rfc_9562() -> None:
    gen = Uuid7(Wall(T0))
    for _ in range(100):
        u = gen()
        assert u.version == 7
        assert u.variant == uuid.RFC_4122
        assert LOWER_UUID.match(str(u))


def test_new_gives_the_lowercase_text_form() -> None:
    gen = Uuid7(Wall(T0))
    text = gen.new()
    assert LOWER_UUID.match(text)
    assert uuid.UUID(text).version == 7


def test_timestamp_follows_the_wall_clock_when_it_moves_forward() -> None:
    wall = Wall(T0)
    gen = Uuid7(wall)
    ids = []
    for step in range(200):
        wall.now = T0 + step * 0.25  # quarter seconds: exact in binary
        u = gen()
        assert timestamp_ms(u) == int(wall.now * 1000)
        ids.append(u)
    assert_strictly_increasing(ids)


def test_strictly_increasing_when_the_wall_clock_goes_back_an_hour() -> None:
    wall = Wall(T0)
    gen = Uuid7(wall)
    before = [gen() for _ in range(100)]
    wall.now = T0 - 3600  # NTP sync after a power cut without an RTC
    after = [gen() for _ in range(100)]
    ids = before + after
    assert_strictly_increasing(ids)
    assert len(set(ids)) == 200
    assert all(u.version == 7 for u in ids)
    # The ids never go below the last one issued, so the timestamp holds at the old time.
    assert timestamp_ms(after[-1]) >= int(T0 * 1000)


def test_timestamp_tracks_the_wall_again_once_it_passes_the_old_time() -> None:
    wall = Wall(T0)
    gen = Uuid7(wall)
    gen()
    wall.now = T0 - 3600
    gen()
    wall.now = T0 + 10
    assert timestamp_ms(gen()) == int((T0 + 10) * 1000)


def test_strictly_increasing_for_10000_ids_at_a_constant_wall_clock() -> None:
    gen = Uuid7(Wall(T0))
    ids = [gen() for _ in range(10_000)]
    assert_strictly_increasing(ids)
    assert len({str(u) for u in ids}) == 10_000
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in ids)
    # 12 bits of counter per millisecond: 10,000 ids run a few ms ahead at most.
    assert int(T0 * 1000) <= timestamp_ms(ids[-1]) <= int(T0 * 1000) + 10


def test_generators_are_independent() -> None:
    a, b = Uuid7(Wall(T0)), Uuid7(Wall(T0 - 3600))
    for _ in range(10):
        a()
    assert timestamp_ms(b()) == int((T0 - 3600) * 1000)


def test_clock_asks_the_kernel_about_sync_at_most_once_per_ttl() -> None:
    mono = [0]
    calls: list[int] = []

    def synced() -> bool:
        calls.append(mono[0])
        return len(calls) % 2 == 1

    clock = Clock(
        wall=Wall(T0), mono_ns=lambda: mono[0], boot_id="b", synced=synced, synced_ttl_s=30
    )
    assert clock.synced() is True
    mono[0] = 29 * 10**9
    assert clock.synced() is True
    assert len(calls) == 1
    mono[0] = 30 * 10**9
    assert clock.synced() is False
    assert calls == [0, 30 * 10**9]


def test_clock_reports_the_injected_wall_and_monotonic_times() -> None:
    clock = Clock(wall=Wall(T0), mono_ns=lambda: 5, boot_id="boot-x", synced=lambda: True)
    assert clock.wall() == T0
    assert clock.mono_ns() == 5
    assert clock.boot_id == "boot-x"
    assert clock.now_utc().timestamp() == T0


def test_utc_iso_is_rfc3339_with_microseconds_and_z() -> None:
    assert utc_iso(T0 + 0.25) == "2026-05-28T20:26:40.250000Z"
    assert utc_iso(0) == "1970-01-01T00:00:00.000000Z"


def test_boot_id_comes_from_the_file_or_is_made_up(tmp_path: Path) -> None:
    path = tmp_path / "boot_id"
    path.write_text("6f1c1f0e-1a2b-4c3d-8e9f-0a1b2c3d4e5f\n")
    assert read_boot_id(path) == "6f1c1f0e-1a2b-4c3d-8e9f-0a1b2c3d4e5f"
    made_up = read_boot_id(tmp_path / "missing")
    assert uuid.UUID(made_up).version == 4


def test_batch_ids_interleaved_with_single_ids_stay_strictly_increasing() -> None:
    """A batch (the tags of one RFID report) counts up from one clock reading; single ids
    made between its ids, and the next batch, still come after every id before them."""
    wall = Wall(T0)
    gen = Uuid7(wall)
    texts: list[str] = []
    for n in range(30):
        one = gen.batch()
        texts += [one() for _ in range(n * 50)]  # up to 1450: past 4096 a ms over the run
        texts.append(gen.new())
        texts.append(one())  # the batch goes on after a single id
        if n % 10 == 9:
            wall.now -= 3600  # the wall clock steps back an hour between batches
    ids = [uuid.UUID(t) for t in texts]
    assert [str(u) for u in ids] == texts, "lowercase text form"
    assert_strictly_increasing(ids)
    assert len(set(texts)) == len(texts)
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in ids)
    assert timestamp_ms(ids[0]) == int(T0 * 1000)


def test_batch_ids_follow_the_wall_clock_when_it_moves_forward() -> None:
    wall = Wall(T0)
    gen = Uuid7(wall)
    first = gen.batch()()
    wall.now = T0 + 5
    later = gen.batch()
    assert timestamp_ms(uuid.UUID(first)) == int(T0 * 1000)
    assert timestamp_ms(uuid.UUID(later())) == int((T0 + 5) * 1000)


def test_each_batch_draws_its_own_random_tail() -> None:
    """rand_b is drawn once per batch (the counter tells a batch's ids apart): over 4000
    batches every one of its 62 bits is seen both set and clear, and no two are equal."""
    gen = Uuid7(Wall(T0))
    tails = [uuid.UUID(gen.batch()()).int & ((1 << 62) - 1) for _ in range(4000)]
    assert len(set(tails)) == len(tails)
    ored = anded = tails[0]
    for t in tails:
        ored |= t
        anded &= t
    assert ored == (1 << 62) - 1 and anded == 0
