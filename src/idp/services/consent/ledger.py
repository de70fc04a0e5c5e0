"""The consent ledger: append-only, hash-chained, verifiable, exportable as consent receipts.

entry_hash = SHA-256(prev_hash ‖ seq ‖ JCS(header) ‖ payload_digest), with
payload_digest = SHA-256(JCS(payload)) and JCS the RFC 8785 canonical JSON (PRIV-06). The chain
covers the payload's digest only, so erasing a payload (GDPR Art. 17) leaves it verifiable
(PRIV-07). Appends are serialised per database so two concurrent appends cannot fork the chain.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import rfc8785
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from idp.crypto.handles import new_public_id
from idp.crypto.keys import derive_key
from idp.observability import metrics
from idp.services.context import Context
from idp.store.models import LedgerEntry

GENESIS = "0" * 64
# Any constant: the key of the PostgreSQL advisory lock that serialises appends.
_APPEND_LOCK = 0x1D9_1ED6E5


_COUNTED = "idp_ledger_actions"


@event.listens_for(Session, "after_commit")
def _count_committed(session: Session) -> None:
    for action in session.info.pop(_COUNTED, ()):
        metrics.CONSENT_CHANGES.labels(action).inc()


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(_COUNTED, None)

def canonical(value: Any) -> bytes:
    return rfc8785.dumps(value)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def subject_ref(ctx: Context, user_id: str) -> str:
    """Pseudonymous, stable reference to the customer; the key can be destroyed (PRIV-01)."""
    key = derive_key(ctx.settings.resolved_key_secret(), "ledger-subject")
    return hmac.new(key, user_id.encode(), hashlib.sha256).hexdigest()


def header_of(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "entry_id": entry.entry_id, "grant_id": entry.grant_id, "client_id": entry.client_id,
        "subject_ref": entry.subject_ref, "action": entry.action, "channel": entry.channel,
        "gpc": entry.gpc, "created_at": entry.created_at,
    }


def chain_hash(prev_hash: str, seq: int, header: dict[str, Any], payload_digest: str) -> str:
    data = prev_hash.encode() + str(seq).encode() + canonical(header) + payload_digest.encode()
    return sha256_hex(data)


async def append(ctx: Context, session: AsyncSession, *, grant_id: str, client_id: str,
                 user_id: str, action: str, channel: str, gpc: bool,
                 payload: dict[str, Any]) -> LedgerEntry:
    """Append one entry in the caller's unit of work."""
    # Counted in /metrics once the caller's unit of work commits (a rollback counts nothing).
    session.info.setdefault(_COUNTED, []).append(action)
    if session.get_bind().dialect.name == "postgresql":
        # Held until the transaction ends; SQLite's BEGIN IMMEDIATE already serialises writers.
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _APPEND_LOCK})
    last = (await session.execute(
        select(LedgerEntry.seq, LedgerEntry.entry_hash).order_by(LedgerEntry.seq.desc()).limit(1)
    )).first()
    seq = (last[0] + 1) if last else 1
    prev_hash = last[1] if last else GENESIS
    entry = LedgerEntry(
        seq=seq, entry_id=new_public_id(), grant_id=grant_id, client_id=client_id,
        subject_ref=subject_ref(ctx, user_id), action=action, channel=channel, gpc=gpc,
        created_at=ctx.now(), payload=payload, payload_digest=sha256_hex(canonical(payload)),
        prev_hash=prev_hash, entry_hash="",
    )
    entry.entry_hash = chain_hash(prev_hash, seq, header_of(entry), entry.payload_digest)
    session.add(entry)
    await session.flush()
    return entry


@dataclass(frozen=True)
class Problem:
    seq: int
    entry_id: str | None
    reason: str


async def verify(ctx: Context) -> tuple[int, list[Problem]]:
    """Walk the whole chain; returns the number of entries and every problem found."""
    problems: list[Problem] = []
    expected_seq = 1
    prev_hash = GENESIS
    count = 0
    async with ctx.db.transaction() as session:
        rows = await session.stream_scalars(select(LedgerEntry).order_by(LedgerEntry.seq))
        async for entry in rows:
            count += 1
            if entry.seq != expected_seq:
                problems.append(Problem(expected_seq, None,
                                        f"entries {expected_seq}..{entry.seq - 1} are missing"))
            if entry.payload is not None and (
                sha256_hex(canonical(entry.payload)) != entry.payload_digest
            ):
                problems.append(Problem(entry.seq, entry.entry_id, "payload was altered"))
            if entry.prev_hash != prev_hash:
                problems.append(Problem(entry.seq, entry.entry_id,
                                        "does not link to the previous entry"))
            if chain_hash(entry.prev_hash, entry.seq, header_of(entry),
                          entry.payload_digest) != entry.entry_hash:
                problems.append(Problem(entry.seq, entry.entry_id, "entry was altered"))
            prev_hash = entry.entry_hash
            expected_seq = entry.seq + 1
    return count, problems


async def entries_for_subject(ctx: Context, session: AsyncSession, user_id: str
                              ) -> list[LedgerEntry]:
    rows = await session.scalars(
        select(LedgerEntry).where(LedgerEntry.subject_ref == subject_ref(ctx, user_id))
        .order_by(LedgerEntry.seq.desc())
    )
    return list(rows)


async def get_entry(session: AsyncSession, entry_id: str) -> LedgerEntry | None:
    return await session.scalar(select(LedgerEntry).where(LedgerEntry.entry_id == entry_id))


async def count_entries(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(LedgerEntry)) or 0)


async def chain_page(ctx: Context, *, after_seq: int = 0, limit: int = 100
                     ) -> list[dict[str, Any]]:
    """The chain for an auditor, in order: each entry's header, payload digest and hashes,
    enough to recompute every link (`chain_hash`) without the payloads' personal data."""
    async with ctx.db.transaction(read_only=True) as session:
        rows = await session.scalars(
            select(LedgerEntry).where(LedgerEntry.seq > after_seq)
            .order_by(LedgerEntry.seq).limit(max(1, min(limit, 1000))))
        return [{"seq": row.seq, **header_of(row), "payload_digest": row.payload_digest,
                 "prev_hash": row.prev_hash, "entry_hash": row.entry_hash} for row in rows]
