"""Upstream providers as configuration: stored with their secrets encrypted, turned into the
right `federation` client (one per alias, kept for the process so metadata and JWKS caches
live on), managed by the CLI."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from idp.crypto.keys import KeyEncryptor
from idp.federation.apple import AppleUpstream
from idp.federation.base import OidcUpstream
from idp.federation.config import UpstreamConfig
from idp.federation.facebook import FacebookUpstream
from idp.federation.google import GoogleUpstream
from idp.federation.oidc import GenericOidcUpstream
from idp.services.context import Context
from idp.store import audit
from idp.store import federation as store
from idp.store.models import Upstream
from idp.store.prepared import Connection

SECRET_FIELDS = ("client_secret", "apple_private_key")
CLIENTS: dict[str, type[OidcUpstream]] = {
    "google": GoogleUpstream, "apple": AppleUpstream, "facebook": FacebookUpstream,
    "oidc": GenericOidcUpstream,
}


def _encryptor(ctx: Context) -> KeyEncryptor:
    return KeyEncryptor(ctx.settings.resolved_key_secret(), "upstream-secrets")


def to_row(ctx: Context, config: UpstreamConfig, now: int) -> Upstream:
    public = config.model_dump(mode="json", exclude=set(SECRET_FIELDS))
    secrets = {name: getattr(config, name).get_secret_value()
               for name in SECRET_FIELDS if getattr(config, name) is not None}
    return Upstream(alias=config.alias, type=config.type, config=public,
                    secrets_encrypted=_encryptor(ctx).encrypt(secrets), enabled=True,
                    created_at=now, updated_at=now)


def to_config(ctx: Context, row: Upstream) -> UpstreamConfig:
    secrets = _encryptor(ctx).decrypt(row.secrets_encrypted)
    return UpstreamConfig.model_validate({**row.config, **secrets})


async def save_upstream(ctx: Context, config: UpstreamConfig, *, actor: str = "cli") -> None:
    """Add or replace an upstream. The audit log gets its settings, never its secrets."""
    async with ctx.db.transaction() as session:
        existing = await store.get_upstream(session, config.alias)
        row = to_row(ctx, config, ctx.now())
        before = None if existing is None else public_view(existing)
        if existing is None:
            session.add(row)
        else:
            existing.type, existing.config = row.type, row.config
            existing.secrets_encrypted, existing.updated_at = row.secrets_encrypted, ctx.now()
        audit.record(session, ctx.now(), actor, "upstream.save", "upstream", config.alias,
                     before, public_view(existing or row))
    ctx.upstream_clients.pop(config.alias, None)


def public_view(row: Upstream) -> dict[str, Any]:
    """An upstream's settings without its secrets (they stay encrypted in the database)."""
    return {"alias": row.alias, "type": row.type, "name": display_name(row),
            "enabled": row.enabled, "config": dict(row.config)}


async def all_upstreams(ctx: Context) -> list[dict[str, Any]]:
    async with ctx.db.transaction(read_only=True) as session:
        return [public_view(row) for row in await store.list_upstreams(session)]


async def enabled_upstreams(ctx: Context) -> list[dict[str, str]]:
    """Alias and display name of each upstream, for the login page's buttons."""
    async with ctx.db.transaction(read_only=True) as session:
        return await enabled_upstreams_in(session)


async def enabled_upstreams_in(connection: Connection) -> list[dict[str, str]]:
    """enabled_upstreams, in the caller's unit of work."""
    return [{"alias": r.alias, "name": display_name(r)}
            for r in await store.enabled_upstreams(connection) if r.type in CLIENTS]


async def name_of(session: AsyncSession, alias: str) -> str:
    """The display name of the upstream `alias`, as the login page names it; for one that
    is gone (removed since), its alias, capitalised."""
    row = await store.get_upstream(session, alias)
    return display_name(row) if row is not None else alias.capitalize()


def display_name(row: Upstream) -> str:
    return {"google": "Google", "apple": "Apple", "facebook": "Facebook"}.get(
        row.type, str(row.config.get("display_name") or row.alias.capitalize()))


async def upstream_client(ctx: Context, alias: str) -> OidcUpstream | None:
    client = ctx.upstream_clients.get(alias)
    if client is not None:
        return client
    async with ctx.db.transaction() as session:
        row = await store.get_upstream(session, alias)
    if row is None or not row.enabled or row.type not in CLIENTS:
        return None
    client = CLIENTS[row.type](to_config(ctx, row), ctx.upstream_http(), ctx.clock)
    ctx.upstream_clients[alias] = client
    return client


def parse_config_file(text: str) -> dict[str, Any]:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("the upstream configuration must be a JSON object")
    return data
