"""The states of a linked upstream identity, and whether an account still has a way in: what
sign-in, linking, erasure and an upstream's withdrawal all decide by (federation.md §9)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from idp.store import federation as store
from idp.store.models import User

# An identity whose consent was withdrawn at the upstream: its sessions and tokens are gone,
# but the same subject signing in again returns to the same account.
REVOKED = "revoked"
# The upstream deleted the subject (Apple account-delete): it never signs in again.
DEAD = "dead"
# Identity states that still let the customer in (REVOKED: by signing in with it again).
CAN_SIGN_IN = frozenset({"active", REVOKED})


async def has_way_in(session: AsyncSession, user: User, *, besides: str | None = None
                     ) -> bool:
    """Whether the account can still be signed in to: a password, or an identity (other than
    `besides`) that can sign in. Decides what may be removed and what is left stranded."""
    if user.password_hash is not None:
        return True
    return any(linked.id != besides and linked.status in CAN_SIGN_IN
               for linked in await store.identities_of_user(session, user.id))
