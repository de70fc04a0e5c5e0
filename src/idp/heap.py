"""The serving process's heap and Python's cyclic garbage collector.

A full collection walks every object the collector tracks, and each object's referents. What
a serving process builds once and keeps (the app and its routes, SQLAlchemy's compiled
statements, asyncpg's prepared ones, Babel's locale data, the templates) is moved out of the
collector's sight with `gc.freeze()`, so a full collection walks only what requests leave
behind. Freezing at startup alone was not enough: much of that is built by the first
requests, after startup. Under load the 25,000 objects left tracked made every full collection
(one every two to five seconds per worker) cost 10-16 ms of CPU, the event loop standing still
for each; settled once more after the first requests, the same collections cost 0.4-2 ms
(README, Performance).

The cost of a freeze: an object it moved that later becomes garbage inside a reference cycle
is never collected (one that is freed by its reference count still is). So the process settles
a fixed, small number of times, early, each after a full collection: what can leak is what
requests in flight at those moments later leave in cycles.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Sequence

# Seconds after the start at which a serving process settles its heap again: once the first
# requests have built what they build on first use, and twice more for what rarer pages
# build later.
SETTLE_AFTER_SECONDS = (30.0, 300.0, 1800.0)


def settle() -> None:
    """What is alive now stays for the life of the process: collect the garbage, then take
    the rest out of the collector's sight."""
    gc.collect()
    gc.freeze()


async def settle_while_warming(after: Sequence[float] = SETTLE_AFTER_SECONDS) -> None:
    """`settle()` at each of `after` (seconds since this started), then return."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    for moment in after:
        await asyncio.sleep(max(0.0, started + moment - loop.time()))
        settle()
