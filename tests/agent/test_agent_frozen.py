"""agent/frozen.py: the fast constructor builds the same frozen objects as the class does."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from agent.frozen import positional
from agent.model import Read
from agent.outbox import Commit

FIELDS = ("id-1", "dock", "tag", b"\x30\x14", "2026-05-28T00:00:00.000000Z", 5, "boot")
FIELDS += (None, 3, -51.0, 7, None, 100, 200, -4)


def test_a_read_made_fast_is_a_read_equal_to_one_made_the_usual_way() -> None:
    fast = positional(Read)(*FIELDS)
    usual = Read(*FIELDS)
    assert type(fast) is Read
    assert fast == usual and hash(fast) == hash(usual)
    assert fast.to_dict() == usual.to_dict()
    assert pickle.loads(pickle.dumps(fast)) == usual
    assert copy.copy(fast) == usual
    assert dataclasses.replace(fast, antenna=4).antenna == 4


def test_a_read_made_fast_is_still_frozen() -> None:
    fast = positional(Read)(*FIELDS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.antenna = 4  # type: ignore[misc]


def test_every_field_must_be_given_in_order() -> None:
    with pytest.raises(TypeError, match="reader_offset_us"):
        positional(Read)(*FIELDS[:-1])
    commit = positional(Commit)(None, (), {}, "good", ())
    assert commit == Commit(None, (), {}, "good", ())


def test_only_frozen_slotted_dataclasses_are_taken() -> None:
    @dataclasses.dataclass(slots=True)
    class Loose:
        a: int

    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    for cls in (Loose, NoSlots, int):
        with pytest.raises(TypeError, match="not a frozen dataclass with slots"):
            positional(cls)
