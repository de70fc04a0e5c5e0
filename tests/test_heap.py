"""idp.heap: a serving process settles its heap (collects, then freezes what is alive) at
startup and a few times more while it warms up, then leaves the collector alone."""

from __future__ import annotations

import asyncio
import gc

import pytest

from idp import heap

pytestmark = pytest.mark.no_database


class _Node:
    """A tracked object that can sit in a cycle."""

    def __init__(self) -> None:
        self.other: _Node | None = None


def _in_sight(obj: object) -> bool:
    """Tracked by the collector and not frozen (gc.get_objects leaves frozen ones out)."""
    return any(o is obj for o in gc.get_objects())


async def test_settles_at_each_moment_then_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    settled_at: list[float] = []
    real = heap.settle

    def settle() -> None:
        settled_at.append(loop.time())
        real()

    monkeypatch.setattr(heap, "settle", settle)
    try:
        early = _Node()
        started = loop.time()
        await asyncio.wait_for(heap.settle_while_warming((0.05, 0.1)), 10)
        # At each moment (a loaded machine may be late, never early), and then no more.
        assert len(settled_at) == 2
        assert settled_at[0] >= started + 0.05 and settled_at[1] >= started + 0.1
        assert not _in_sight(early)  # frozen
        assert _in_sight(_Node())  # made after the last moment: left to the collector
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
