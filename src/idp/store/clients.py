"""Client registrations."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from idp.domain import ClientConfig
from idp.store.models import Client


def to_config(row: Client) -> ClientConfig:
    return ClientConfig(
        client_id=row.client_id,
        name=row.name,
        client_type=row.client_type,
        application_type=row.application_type,
        token_endpoint_auth_method=row.token_endpoint_auth_method,
        redirect_uris=tuple(row.redirect_uris),
        grant_types=tuple(row.grant_types),
        allowed_scopes=tuple(row.allowed_scopes),
        id_token_signed_response_alg=row.id_token_signed_response_alg,
        require_pkce=row.require_pkce,
        secret_hash=row.secret_hash,
        long_sessions=row.long_sessions,
        jwks=row.jwks,
        jwks_uri=row.jwks_uri,
        backchannel_logout_uri=row.backchannel_logout_uri,
        backchannel_logout_session_required=row.backchannel_logout_session_required,
        post_logout_redirect_uris=tuple(row.post_logout_redirect_uris or ()),
        optional_scopes=tuple(row.optional_scopes or ()),
        event_uri=row.event_uri,
    )


async def get_client(session: AsyncSession, client_id: str) -> ClientConfig | None:
    # PostgreSQL text cannot hold NUL: asking for such an id would raise instead of not matching.
    if not client_id or len(client_id) > 64 or "\x00" in client_id:
        return None
    row = await session.get(Client, client_id)
    return to_config(row) if row else None


async def list_clients(session: AsyncSession) -> list[ClientConfig]:
    rows = await session.scalars(select(Client).order_by(Client.created_at, Client.client_id))
    return [to_config(r) for r in rows]


def add_client(session: AsyncSession, row: Client) -> None:
    session.add(row)
