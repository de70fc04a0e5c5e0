"""Operator use cases: register and manage clients, create users. The CLI and the admin API
call these same functions; every change is recorded in the admin audit log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from idp.crypto.handles import digest, new_handle, new_public_id
from idp.crypto.keys import SUPPORTED_ALGS
from idp.domain import ClientConfig
from idp.protocol.claims import PROTOCOL_CLAIMS
from idp.protocol.client_assertion import key_registration_problem
from idp.protocol.client_display import DISPLAY_URIS, display_uri_problem
from idp.protocol.discovery import GRANT_TYPES, TOKEN_ENDPOINT_AUTH_METHODS
from idp.protocol.pairwise import subject_columns
from idp.protocol.redirect_uri import endpoint_problem, registration_problem
from idp.protocol.scopes import PROFILE_CLAIMS, SUPPORTED_SCOPES, is_api_scope
from idp.services import InvalidInput, NotFound, RedirectUriRefused
from idp.services.accounts import audit
from idp.services.context import Context
from idp.services.signin.credential_rules import email_problem, password_problem
from idp.services.tokens import pairwise
from idp.services.tokens.pairwise import SectorDocument
from idp.store import clients as client_store
from idp.store import profile as profile_store
from idp.store import users as user_store
from idp.store.models import Client, User


@dataclass(frozen=True)
class NewClient:
    client: ClientConfig
    client_secret: str | None  # shown once, never stored


# What an operator may change on a registration (PATCH); the kind of client and how it
# authenticates are fixed at creation: changing them would change what its secret means.
MUTABLE_FIELDS = ("name", "redirect_uris", "grant_types", "scopes", "id_token_signed_response_alg",
                  "require_pkce", "long_sessions", "post_logout_redirect_uris",
                  "backchannel_logout_uri", "backchannel_logout_session_required", "jwks",
                  "jwks_uri", "optional_scopes", "event_uri", "require_par",
                  "dpop_bound_access_tokens", "require_mfa", *DISPLAY_URIS,
                  "subject_type", "sector_identifier_uri")


def registration(
    ctx: Context, *, name: str, redirect_uris: list[str], client_type: str = "confidential",
    application_type: str = "web", grant_types: list[str] | None = None,
    scopes: list[str] | None = None, token_endpoint_auth_method: str | None = None,
    id_token_signed_response_alg: str = "RS256", require_pkce: bool = True,
    long_sessions: bool = False, post_logout_redirect_uris: list[str] | None = None,
    backchannel_logout_uri: str | None = None, backchannel_logout_session_required: bool = True,
    jwks: dict[str, Any] | None = None, jwks_uri: str | None = None,
    optional_scopes: list[str] | None = None, event_uri: str | None = None,
    require_par: bool = False, dpop_bound_access_tokens: bool = False,
    require_mfa: bool = False, logo_uri: str | None = None, policy_uri: str | None = None,
    tos_uri: str | None = None,
    subject_type: str = "public", sector_identifier_uri: str | None = None,
) -> dict[str, Any]:
    """The registration rules every way in shares (CLI, admin API): the columns of a valid
    registration, or InvalidInput saying what is wrong."""
    if client_type not in ("public", "confidential"):
        raise InvalidInput("client type must be public or confidential")
    if application_type not in ("web", "native"):
        raise InvalidInput("application type must be web or native")
    method = token_endpoint_auth_method or (
        "none" if client_type == "public" else "client_secret_basic"
    )
    if method not in TOKEN_ENDPOINT_AUTH_METHODS:
        raise InvalidInput(f"auth method must be one of {TOKEN_ENDPOINT_AUTH_METHODS}")
    if (method == "none") != (client_type == "public"):
        raise InvalidInput("public clients use auth method none; confidential clients a secret")
    # RFC 7523 §2.2: private_key_jwt clients register public keys and get no secret.
    problem = key_registration_problem(method, jwks, jwks_uri, ctx.settings.dev_mode)
    if problem:
        raise InvalidInput(problem)
    grant_types = grant_types or ["authorization_code"]
    unknown = [g for g in grant_types if g not in GRANT_TYPES]
    if unknown:
        raise InvalidInput(f"grant type {unknown[0]} is not supported")
    scopes = scopes or ["openid", "profile", "email"]
    unknown = [s for s in scopes if s not in SUPPORTED_SCOPES and not is_api_scope(s)]
    if unknown:
        raise InvalidInput(f"scope {unknown[0]} is not supported")
    # security.md §2.2: never alg=none.
    if id_token_signed_response_alg not in SUPPORTED_ALGS:
        raise InvalidInput(f"ID token algorithm must be one of {SUPPORTED_ALGS}")
    if "authorization_code" in grant_types and not redirect_uris:
        raise RedirectUriRefused("at least one redirect URI is required")
    for uri in redirect_uris:
        problem = registration_problem(uri, application_type, ctx.settings.dev_mode)
        if problem:
            raise RedirectUriRefused(f"{uri[:200]}: {problem}")
    if client_type == "public" and not require_pkce:
        raise InvalidInput("public clients always use PKCE")
    if client_type == "public" and "client_credentials" in grant_types:
        raise InvalidInput("client_credentials needs a confidential client (RFC 6749 §4.4)")
    post_logout_redirect_uris = post_logout_redirect_uris or []
    for uri in post_logout_redirect_uris:
        problem = registration_problem(uri, application_type, ctx.settings.dev_mode)
        if problem:
            raise InvalidInput(f"{uri[:200]}: {problem}")
    optional_scopes = list(dict.fromkeys(optional_scopes or []))
    if "openid" in optional_scopes or not set(optional_scopes) <= set(scopes):
        raise InvalidInput("optional scopes must be allowed scopes other than openid")
    for endpoint in (backchannel_logout_uri, event_uri):
        # Back-Channel Logout §2.2: an absolute URI; https outside loopback testing.
        problem = endpoint_problem(endpoint) if endpoint is not None else None
        if problem:
            raise InvalidInput(f"{endpoint}: {problem}")
    try:
        # OIDC Core §8: public or pairwise subjects, and a pairwise client's sector.
        subject = subject_columns(subject_type, redirect_uris, sector_identifier_uri,
                                  ctx.settings.dev_mode)
    except ValueError as problem:
        raise InvalidInput(str(problem)) from None
    display = {"logo_uri": logo_uri, "policy_uri": policy_uri, "tos_uri": tos_uri}
    for key, shown in display.items():
        refusal = display_uri_problem(key, shown, ctx.settings.dev_mode) if shown else None
        if refusal:
            raise InvalidInput(refusal)
    return {
        "name": name.strip()[:200] or "Unnamed app", "client_type": client_type,
        "application_type": application_type, "token_endpoint_auth_method": method,
        "redirect_uris": list(dict.fromkeys(redirect_uris)),
        "post_logout_redirect_uris": post_logout_redirect_uris, "grant_types": grant_types,
        "allowed_scopes": scopes, "id_token_signed_response_alg": id_token_signed_response_alg,
        "require_pkce": require_pkce, "long_sessions": long_sessions, "jwks": jwks,
        "jwks_uri": jwks_uri, "backchannel_logout_uri": backchannel_logout_uri,
        "backchannel_logout_session_required": backchannel_logout_session_required,
        "optional_scopes": optional_scopes, "event_uri": event_uri,
        "require_par": require_par, "dpop_bound_access_tokens": dpop_bound_access_tokens,
        "require_mfa": require_mfa,
        **{key: shown or None for key, shown in display.items()}, **subject,
    }


async def create_client(ctx: Context, *, actor: str = "cli", **fields: Any) -> NewClient:
    columns = registration(ctx, **fields)
    await pairwise.checked_sector(ctx, columns)  # OIDC Registration §5, before the transaction
    row, secret = new_row(ctx, columns)
    async with ctx.db.transaction() as session:
        config = add_row(ctx, session, row, actor)
    return NewClient(config, secret)


def new_row(ctx: Context, columns: dict[str, Any]) -> tuple[Client, str | None]:
    """A new registration of `registration()`'s columns, and its secret if it has one."""
    method = columns["token_endpoint_auth_method"]
    secret = new_handle() if method.startswith("client_secret_") else None
    row = Client(client_id=new_public_id(), secret_hash=digest(secret) if secret else None,
                 created_at=ctx.now(), **columns)
    return row, secret


def add_row(ctx: Context, session: AsyncSession, row: Client, actor: str) -> ClientConfig:
    """`new_row`'s registration added in the caller's unit of work, with its audit record."""
    client_store.add_client(session, row)
    config = client_store.to_config(row)
    audit.record(session, ctx.now(), actor, "client.create", "client", row.client_id,
                 None, public_view(config))
    return config


def public_view(client: ClientConfig) -> dict[str, Any]:
    """A registration as the admin API shows it and the audit log records it: everything
    but the secret's digest."""
    return {
        "client_id": client.client_id, "name": client.name, "client_type": client.client_type,
        "application_type": client.application_type,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "redirect_uris": list(client.redirect_uris), "grant_types": list(client.grant_types),
        "scopes": list(client.allowed_scopes),
        "optional_scopes": list(client.optional_scopes),
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "require_pkce": client.require_pkce, "long_sessions": client.long_sessions,
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "backchannel_logout_session_required": client.backchannel_logout_session_required,
        "jwks": client.jwks, "jwks_uri": client.jwks_uri, "event_uri": client.event_uri,
        "require_par": client.require_par,
        "dpop_bound_access_tokens": client.dpop_bound_access_tokens,
        "require_mfa": client.require_mfa,
        "logo_uri": client.logo_uri, "policy_uri": client.policy_uri, "tos_uri": client.tos_uri,
        "subject_type": client.subject_type,
        "sector_identifier_uri": client.sector_identifier_uri,
    }


async def get_client(ctx: Context, client_id: str) -> ClientConfig:
    async with ctx.db.transaction(read_only=True) as session:
        client = await client_store.get_client(session, client_id)
    if client is None:
        raise NotFound(f"no client {client_id[:64]}")
    return client


async def update_client(ctx: Context, client_id: str, changes: dict[str, Any], *,
                        actor: str = "cli") -> ClientConfig:
    """Change a registration under the same rules as creating one. The client's cached copy
    elsewhere follows within IDP_CLIENT_CACHE_SECONDS."""
    fixed = set(changes) - set(MUTABLE_FIELDS)
    if fixed:
        raise InvalidInput(f"{sorted(fixed)[0]} cannot be changed")
    sector = await pairwise.sector_for_changes(ctx, await get_client(ctx, client_id), changes)
    async with ctx.db.transaction() as session:
        row = await session.get(Client, client_id, with_for_update=True)
        if row is None:
            raise NotFound(f"no client {client_id[:64]}")
        config = apply_changes(ctx, session, row, changes, actor, sector)
    ctx.clients.forget(client_id)
    return config


def apply_changes(ctx: Context, session: AsyncSession, row: Client, changes: dict[str, Any],
                  actor: str, sector: SectorDocument | None = None) -> ClientConfig:
    """`changes` (of MUTABLE_FIELDS) applied to a locked registration row if the result
    follows the rules, with its audit record; the caller forgets its cached copy. `sector`:
    the sector identifier document fetched for the change (`pairwise.sector_for_changes`)."""
    before = public_view(client_store.to_config(row))
    current = {key: value for key, value in before.items() if key != "client_id"}
    columns = registration(ctx, **{**current, **changes})
    pairwise.check_subject_change(client_store.to_config(row), columns, sector)
    for key, value in columns.items():
        setattr(row, key, value)
    after = public_view(client_store.to_config(row))
    audit.record(session, ctx.now(), actor, "client.update", "client", row.client_id,
                 before, after)
    return client_store.to_config(row)


async def rotate_client_secret(ctx: Context, client_id: str, *, actor: str = "cli") -> str:
    """A new secret, shown once; the old one stops working at once here and within
    IDP_CLIENT_CACHE_SECONDS on other processes."""
    secret = new_handle()
    async with ctx.db.transaction() as session:
        row = await session.get(Client, client_id, with_for_update=True)
        if row is None:
            raise NotFound(f"no client {client_id[:64]}")
        if not row.token_endpoint_auth_method.startswith("client_secret_"):
            raise InvalidInput("this client authenticates without a secret")
        row.secret_hash = digest(secret)
        audit.record(session, ctx.now(), actor, "client.rotate_secret", "client", client_id,
                     None, None)
    ctx.clients.forget(client_id)
    return secret


async def delete_client(ctx: Context, client_id: str, *, actor: str = "cli") -> None:
    """The registration and everything issued to it (grants, codes, refresh tokens; its
    access tokens are refused from then on). The consent ledger keeps its entries."""
    async with ctx.db.transaction() as session:
        row = await session.get(Client, client_id)
        if row is None:
            raise NotFound(f"no client {client_id[:64]}")
        await delete_row(ctx, session, row, actor)
    ctx.clients.forget(client_id)


async def delete_row(ctx: Context, session: AsyncSession, row: Client, actor: str) -> None:
    """`delete_client` inside the caller's unit of work; the caller forgets the cached copy."""
    before = public_view(client_store.to_config(row))
    await session.delete(row)
    audit.record(session, ctx.now(), actor, "client.delete", "client", row.client_id,
                 before, None)


async def list_clients(ctx: Context) -> list[ClientConfig]:
    async with ctx.db.transaction() as session:
        return await client_store.list_clients(session)


async def create_user(ctx: Context, *, email: str, password: str | None,
                      profile: dict[str, Any] | None = None, email_verified: bool = False) -> User:
    problem = email_problem(email) or (
        password_problem(ctx, password, email) if password else None)
    if problem:
        raise InvalidInput(problem)
    profile = profile or {}
    bad = [k for k in profile if k not in PROFILE_CLAIMS or k in PROTOCOL_CLAIMS]
    if bad:
        raise InvalidInput(f"{bad[0]} is not a profile claim")
    password_hash = await ctx.passwords.hash(password) if password else None
    now = ctx.now()
    user = User(
        id=new_public_id(), email=user_store.normalize_email(email), email_verified=email_verified,
        password_hash=password_hash, profile=profile, created_at=now, updated_at=now,
    )
    try:
        async with ctx.db.transaction() as session:
            session.add(user)
            await session.flush()
            # Issue 16 item 1: the values an operator gave keep the operator as their source.
            await profile_store.set_provenance(session, user.id, profile,
                                               profile_store.Source("operator"), now)
    except IntegrityError:
        raise InvalidInput("an account with this email address exists") from None
    return user
