"""The engine settles its heap after start-up and reloads: what lives is frozen out of
the collector's sight, what was garbage is collected first."""

from __future__ import annotations

import gc
import weakref

from tripwire.engine import settle_heap


class Node:
    def __init__(self) -> None:
        self.me: Node | None = None


def test_settling_collects_dropped_cycles_and_freezes_the_rest() -> None:
    dropped = Node()
    dropped.me = dropped  # a cycle: only the collector frees it
    gone = weakref.ref(dropped)
    del dropped
    kept = Node()
    try:
        settle_heap()
        assert gone() is None
        assert gc.get_freeze_count() > 0
        assert not any(o is kept for o in gc.get_objects())  # frozen: no generation holds it
    finally:
        gc.unfreeze()
    assert any(o is kept for o in gc.get_objects())
