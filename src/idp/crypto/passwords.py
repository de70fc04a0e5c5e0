"""argon2id password hashing, always off the event loop.

A semaphore bounds how many hashes run at once so a burst of logins cannot exhaust memory
(REL-10). Unknown accounts are verified against a dummy hash so the response time does not tell
whether an account exists (security.md §0 item 12).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    new_hash: str | None = None  # set when the stored hash uses outdated parameters


class PasswordService:
    def __init__(self, time_cost: int, memory_kib: int, parallelism: int, concurrency: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        self._limit = asyncio.Semaphore(concurrency)
        self._dummy_hash: str | None = None

    async def warm_up(self) -> None:
        """Compute the dummy hash up front so the first unknown-account login is not slower."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash("dummy password, never matches")

    async def hash(self, password: str) -> str:
        async with self._limit:
            return await asyncio.to_thread(self._hasher.hash, password)

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

        async with self._limit:
            return await asyncio.to_thread(run)
