"""argon2id password hashing, always off the event loop.

Hashes run in a pool of their own, as many at once as `concurrency` allows, so a burst of
logins can neither exhaust memory (REL-10) nor take every core: the pool's threads also run at
a lower CPU priority than the event loop (Linux `nice` per thread), so when both want a core
the token, introspection and UserInfo requests go first and sign-ins wait (argon2 releases the
GIL while it hashes). Unknown accounts are verified against a dummy hash so the response time
does not tell whether an account exists (security.md §0 item 12).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

T = TypeVar("T")
# How much less CPU priority a hashing thread has than the event loop (nice 0 → 10).
HASH_THREAD_NICENESS = 10


# The hashing threads' name where the system shows threads (`top -H`, /proc/<pid>/task/*/comm):
# an operator sees what the sign-ins cost apart from everything else (so does
# bench/signin_cost.py).
HASH_THREAD_NAME = "idp-argon2"


def _lower_priority() -> None:
    """Runs in each hashing thread as it starts. Linux applies `nice` per thread; where the
    platform does not, the thread keeps the process's priority. On Linux the thread is also
    named for the system."""
    with contextlib.suppress(AttributeError, OSError):
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid)
                       + HASH_THREAD_NICENESS)
    with contextlib.suppress(OSError), open(
            f"/proc/self/task/{threading.get_native_id()}/comm", "w") as comm:
        comm.write(HASH_THREAD_NAME)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    new_hash: str | None = None  # set when the stored hash uses outdated parameters


class PasswordService:
    def __init__(self, time_cost: int, memory_kib: int, parallelism: int, concurrency: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="argon2",
                                        initializer=_lower_priority)
        self._dummy_hash: str | None = None

    async def _run(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, work)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def warm_up(self) -> None:
        """Compute the dummy hash up front so the first unknown-account login is not slower."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash("dummy password, never matches")

    async def hash(self, password: str) -> str:
        return await self._run(lambda: self._hasher.hash(password))

    async def verify(self, stored_hash: str | None, password: str) -> VerifyResult:
        """Verify `password`; with no stored hash, burn the same time and fail."""
        if stored_hash is None:
            await self.warm_up()
            assert self._dummy_hash is not None
            await self._check(self._dummy_hash, password)
            return VerifyResult(ok=False)
        if not await self._check(stored_hash, password):
            return VerifyResult(ok=False)
        if self._hasher.check_needs_rehash(stored_hash):
            return VerifyResult(ok=True, new_hash=await self.hash(password))
        return VerifyResult(ok=True)

    async def _check(self, stored_hash: str, password: str) -> bool:
        def run() -> bool:
            try:
                return self._hasher.verify(stored_hash, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

        return await self._run(run)
