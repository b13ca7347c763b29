"""Start-up's objects are left out of full collections while the daemon runs, then put back."""

from __future__ import annotations

import gc
import weakref

from agent.memory import kept_out_of_full_collections


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_what_lives_at_start_up_is_frozen_until_the_block_ends_and_garbage_is_not() -> None:
    kept = Node()
    garbage = Node()
    gone = weakref.ref(garbage)
    del garbage
    before = gc.get_freeze_count()
    with kept_out_of_full_collections():
        assert gone() is None  # collected first: no garbage is frozen with the rest
        assert gc.get_freeze_count() > before
        assert not any(o is kept for o in gc.get_objects(generation=2))
        made = Node()
        assert any(o is made for o in gc.get_objects())  # what comes later is collected
    assert gc.get_freeze_count() == 0
    assert any(o is kept for o in gc.get_objects())
