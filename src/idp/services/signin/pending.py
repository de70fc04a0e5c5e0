"""The interaction a page acts on, found only in the browser that began it (Keycloak
CVE-2026-7507): an id that is gone, expired, or another browser's is the same stale request,
refused before anything is counted or shown; an interaction whose app is gone, an unknown
client. Each page reads it the lightest way it can: locked for the unit of work that signs
the customer in, unlocked and with its app for a page that only shows it, or only its
client's id before a password attempt is counted."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from idp import errors
from idp.crypto.handles import digest
from idp.domain import ClientConfig
from idp.services.context import Context
from idp.store import clients as client_store
from idp.store import interactions as interaction_store
from idp.store.models import Interaction
from idp.store.prepared import Connection


def stale() -> errors.InvalidRequest:
    return errors.InvalidRequest(
        "This sign-in request has expired or belongs to another browser. "
        "Return to the app and start again.",
        redirectable=False,
    )


async def load_interaction(ctx: Context, session: AsyncSession, interaction_id: str,
                           browser_id: str) -> tuple[Interaction, ClientConfig]:
    """The interaction, only in the browser that began it (Keycloak CVE-2026-7507)."""
    interaction = await interaction_store.get_interaction(session, interaction_id, ctx.now())
    if interaction is None or interaction.browser_hash != digest(browser_id):
        raise stale()
    return interaction, _known(await client_store.get_client(session, interaction.client_id))


async def lock_for_sign_in(ctx: Context, connection: Connection, interaction_id: str,
                           browser_id: str, client: ClientConfig | None
                           ) -> tuple[Interaction, ClientConfig]:
    """load_interaction for the unit of work that signs the customer in and continues the
    authorization (`resume_in`): locked, read as a detached object with one prepared
    statement, with `client` its app as the caller read it from the client cache before
    the unit of work opened (None: the app is gone)."""
    interaction = await interaction_store.lock_interaction(connection, interaction_id,
                                                           ctx.now())
    if interaction is None or interaction.browser_hash != digest(browser_id):
        raise stale()
    if client is not None and client.client_id != interaction.client_id:
        raise stale()  # not the interaction the caller checked before its first unit of work
    return interaction, _known(client)


async def interaction_to_show(ctx: Context, connection: Connection, interaction_id: str,
                              browser_id: str) -> tuple[Interaction, ClientConfig]:
    """load_interaction for a page that only shows the interaction: detached, unlocked, and
    read with its app in one statement."""
    found = await interaction_store.interaction_for_page(connection, interaction_id,
                                                         ctx.now())
    if found is None or found[0].browser_hash != digest(browser_id):
        raise stale()
    return found[0], _known(found[1])


def _known(client: ClientConfig | None) -> ClientConfig:
    if client is None:
        raise errors.InvalidClient("The client is not known", redirectable=False)
    return client


async def check_pending(ctx: Context, connection: Connection, interaction_id: str,
                        browser_id: str) -> str:
    """load_interaction's answer for an interaction that is gone or not this browser's, from
    one light read (before a password attempt is counted and hashed); its client's id."""
    client_id = await interaction_store.pending_client(connection, interaction_id,
                                                       digest(browser_id), ctx.now())
    return pending_or_stale(client_id)


T = TypeVar("T")


def pending_or_stale(pending: T | None) -> T:
    """check_pending's answer from what was read with the interaction's client (None: the
    interaction is gone or not this browser's)."""
    if pending is None:
        raise stale()
    return pending
