"""idp.heap: a serving process settles its heap (collects, then freezes what is alive) at
startup and a few times more while it warms up, then leaves the collector alone."""

from __future__ import annotations

import asyncio
import gc

from idp import heap


class _Node:
    """A tracked object that can sit in a cycle."""

    def __init__(self) -> None:
        self.other: _Node | None = None


def _in_sight(obj: object) -> bool:
    """Tracked by the collector and not frozen (gc.get_objects leaves frozen ones out)."""
    return any(o is obj for o in gc.get_objects())


async def test_settles_at_each_moment_then_stops() -> None:
    try:
        task = asyncio.create_task(heap.settle_while_warming((0.05, 0.4)))
        early = _Node()
        await asyncio.sleep(0.2)
        assert not task.done()
        assert not _in_sight(early)  # frozen at the first moment
        late = _Node()
        assert _in_sight(late)
        await asyncio.wait_for(task, 5)
        assert not _in_sight(late)  # and at the second
        assert _in_sight(_Node())  # and then no more
    finally:
        gc.unfreeze()


def test_settle_collects_garbage_before_it_freezes() -> None:
    """Garbage in a cycle is collected first, never frozen (where it would stay)."""
    try:
        gc.collect()
        a, b = _Node(), _Node()
        a.other, b.other = b, a
        del a, b
        gc.disable()  # no collection of its own in between
        try:
            heap.settle()
        finally:
            gc.enable()
        assert gc.get_freeze_count() > 0
        gc.unfreeze()
        assert not any(isinstance(o, _Node) for o in gc.get_objects())
    finally:
        gc.unfreeze()
