"""argon2 runs in a bounded pool of its own whose threads yield the CPU to the event loop, so
sign-in bursts cannot starve the token endpoints (issue 10; security.md REL-10)."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from idp.crypto.passwords import HASH_THREAD_NAME, HASH_THREAD_NICENESS, PasswordService
from idp.settings import Settings

pytestmark = pytest.mark.no_database


async def test_no_more_hashes_at_once_than_the_pool_allows() -> None:
    service = PasswordService(1, 64, 1, concurrency=2)
    running, peak = 0, 0
    lock = threading.Lock()

    def probe() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1

    try:
        await asyncio.gather(*(service._run(probe) for _ in range(6)))
    finally:
        service.close()
    assert peak == 2


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice is a Linux feature")
async def test_hashing_threads_run_at_a_lower_priority_than_the_event_loop() -> None:
    service = PasswordService(1, 64, 1, concurrency=1)

    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    try:
        loop_nice = niceness()
        assert await service._run(niceness) == loop_nice + HASH_THREAD_NICENESS
        # And the pool still hashes and verifies.
        stored = await service.hash("correct horse")
        assert (await service.verify(stored, "correct horse")).ok
        assert not (await service.verify(stored, "wrong horse")).ok
    finally:
        service.close()


def _thread_name(tid: int) -> str:
    return Path(f"/proc/self/task/{tid}/comm").read_text().strip()


@pytest.mark.skipif(sys.platform != "linux", reason="thread names in /proc are Linux's")
async def test_hashing_threads_are_named_for_the_system() -> None:
    """`top -H` (and the sign-in benchmark) tell the hashing apart from the event loop."""
    service = PasswordService(1, 64, 1, concurrency=1)
    try:
        assert _thread_name(await service._run(threading.get_native_id)) == HASH_THREAD_NAME
        assert _thread_name(threading.get_native_id()) != HASH_THREAD_NAME
    finally:
        service.close()


def test_the_default_pool_leaves_a_core_to_the_event_loop() -> None:
    assert Settings(dev_mode=True).argon2_max_concurrency == max(1, (os.cpu_count() or 2) - 1)
