"""Client registrations, and the initial access tokens that let apps register themselves."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp.domain import ClientConfig
from idp.store.models import Client, InitialAccessToken


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
        require_par=bool(row.require_par),
        dpop_bound_access_tokens=bool(row.dpop_bound_access_tokens),
        require_mfa=bool(row.require_mfa),
        subject_type=row.subject_type or "public",
        sector_identifier_uri=row.sector_identifier_uri,
        sector_identifier=row.sector_identifier,
        logo_uri=row.logo_uri,
        policy_uri=row.policy_uri,
        tos_uri=row.tos_uri,
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


async def spend_initial_token(session: AsyncSession, token_hash: str, now: int) -> str | None:
    """One use of a live initial access token, in one conditional update (two registrations
    racing for its last use cannot both have it): its id, or None when it is unknown,
    expired or used up."""
    return await session.scalar(
        update(InitialAccessToken)
        .where(InitialAccessToken.token_hash == token_hash,
               InitialAccessToken.uses_left > 0, InitialAccessToken.expires_at > now)
        .values(uses_left=InitialAccessToken.uses_left - 1)
        .returning(InitialAccessToken.id))


async def purge_initial_tokens(session: AsyncSession, now: int) -> None:
    await session.execute(delete(InitialAccessToken).where(InitialAccessToken.expires_at <= now))
