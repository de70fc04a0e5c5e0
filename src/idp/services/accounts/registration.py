"""Apps that register themselves: dynamic client registration (RFC 7591) and its management
protocol (RFC 7592), and the initial access tokens operators hand out to gate it.

Off unless IDP_REGISTRATION says "token" or "open". A self-registered client goes through the
same registration rules as one an operator registers (`admin.registration`), plus the policy
of IDP_REGISTRATION_GRANT_TYPES and IDP_REGISTRATION_SCOPES; it always uses PKCE. Every
registration, change and deletion is in the admin audit log.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from idp import errors
from idp.crypto.handles import digest, digest_matches, new_handle
from idp.domain import ClientConfig
from idp.protocol.client_display import DISPLAY_URIS
from idp.protocol.registration import SERVER_FIELDS, Policy, registration_fields
from idp.services import InvalidInput, NotFound, RedirectUriRefused
from idp.services.accounts import admin, audit
from idp.services.context import Context
from idp.services.signin import throttle
from idp.services.tokens import pairwise
from idp.store import clients as client_store
from idp.store.models import Client, InitialAccessToken

MAX_INITIAL_TOKEN_USES = 1000
MAX_INITIAL_TOKEN_SECONDS = 30 * 86_400


class RegistrationOff(NotFound):
    """IDP_REGISTRATION is off: the endpoints answer as if they did not exist."""

    def __init__(self) -> None:
        super().__init__("dynamic client registration is not enabled on this server")


@dataclass(frozen=True)
class Registration:
    """A self-registered client as RFC 7591 §3.2.1 answers it."""

    client: ClientConfig
    issued_at: int
    client_secret: str | None  # on registration only: it is stored as a digest
    registration_token: str


@dataclass(frozen=True)
class InitialToken:
    id: str
    note: str
    created_by: str
    created_at: int
    expires_at: int
    uses_left: int


def policy(ctx: Context) -> Policy:
    return Policy(ctx.settings.registration_grant_types, ctx.settings.registration_scopes)


def _columns(ctx: Context, metadata: dict[str, Any]) -> dict[str, Any]:
    """The registration these metadata ask for, under the shared rules and the policy."""
    fields = registration_fields(metadata, policy(ctx))
    try:
        return admin.registration(ctx, **fields)
    except RedirectUriRefused as refused:
        raise errors.InvalidRedirectUri(str(refused)) from None
    except InvalidInput as refused:
        raise errors.InvalidClientMetadata(str(refused)) from None


async def _sector(ctx: Context, uri: str | None, redirect_uris: list[str]
                  ) -> pairwise.SectorDocument | None:
    """OIDC Registration §5: the sector identifier document, fetched and checked before any
    unit of work opens; a failure is `invalid_client_metadata`."""
    try:
        return await pairwise.checked_sector(ctx, {"sector_identifier_uri": uri,
                                                   "redirect_uris": redirect_uris})
    except InvalidInput as refused:
        raise errors.InvalidClientMetadata(str(refused)) from None


async def _sector_for(ctx: Context, current: ClientConfig, fields: dict[str, Any]
                      ) -> pairwise.SectorDocument | None:
    """`_sector` for a replaced registration: fetched only when it changes what to check."""
    try:
        return await pairwise.sector_for_changes(ctx, current, {
            name: fields[name] for name in ("subject_type", "sector_identifier_uri",
                                            "redirect_uris")})
    except InvalidInput as refused:
        raise errors.InvalidClientMetadata(str(refused)) from None


def _enabled(ctx: Context) -> None:
    if ctx.settings.registration == "off":
        raise RegistrationOff()


async def register(ctx: Context, metadata: dict[str, Any], initial_token: str | None
                   ) -> Registration:
    """RFC 7591 §3: a new client, its secret (if it authenticates with one) and its
    registration access token, each shown in this answer only."""
    _enabled(ctx)
    gated = ctx.settings.registration == "token"
    if gated and not initial_token:
        raise errors.InvalidToken("An initial access token is required to register")
    await throttle.count_registration(ctx)
    columns = _columns(ctx, metadata)
    await _sector(ctx, columns.get("sector_identifier_uri"), columns["redirect_uris"])
    row, secret = admin.new_row(ctx, columns)
    registration_token = new_handle()
    row.registration_token_hash = digest(registration_token)
    async with ctx.db.transaction() as session:
        actor = "registration"
        if gated:
            assert initial_token is not None
            # Spent in the registration's own unit of work: a refused or failed
            # registration costs no use.
            token_id = await client_store.spend_initial_token(
                session, digest(initial_token), ctx.now())
            if token_id is None:
                raise errors.InvalidToken("The initial access token is invalid, expired or "
                                          "used up")
            actor = f"registration:{token_id}"
        config = admin.add_row(ctx, session, row, actor)
    return Registration(config, row.created_at, secret, registration_token)


async def _own_row(session: AsyncSession, client_id: str, token: str, *, lock: bool = True
                   ) -> Client:
    """The self-registered client the registration access token belongs to. RFC 7592 §2.1:
    an unknown client, a client registered otherwise, and a wrong token all answer 401."""
    row = None
    if 0 < len(client_id) <= 64 and "\x00" not in client_id:
        row = await session.get(Client, client_id, with_for_update=lock)
    if (row is None or row.registration_token_hash is None
            or not digest_matches(token, row.registration_token_hash)):
        raise errors.InvalidToken("The registration access token is invalid for this client")
    return row


async def read(ctx: Context, client_id: str, token: str) -> Registration:
    """RFC 7592 §2.1: the registration as it stands (never its secret, kept as a digest)."""
    _enabled(ctx)
    async with ctx.db.transaction(read_only=True) as session:
        row = await _own_row(session, client_id, token, lock=False)
        return Registration(client_store.to_config(row), row.created_at, None, token)


async def replace(ctx: Context, client_id: str, token: str, metadata: dict[str, Any]
                  ) -> Registration:
    """RFC 7592 §2.2: the metadata sent replace the registration's (absent fields take
    their defaults), under the same rules and policy as registering."""
    _enabled(ctx)
    present = [name for name in SERVER_FIELDS if name in metadata]
    if present:
        raise errors.InvalidClientMetadata(f"{present[0]} is set by the server, not sent")
    if metadata.get("client_id") != client_id:
        raise errors.InvalidClientMetadata("client_id must be this client's identifier")
    sector = None
    if isinstance(metadata.get("sector_identifier_uri"), str):
        async with ctx.db.transaction(read_only=True) as session:
            # Authenticated first: nothing is fetched for anyone else.
            current = client_store.to_config(await _own_row(session, client_id, token,
                                                            lock=False))
        sector = await _sector_for(ctx, current, registration_fields(metadata, policy(ctx)))
    async with ctx.db.transaction() as session:
        row = await _own_row(session, client_id, token)
        secret = metadata.get("client_secret")
        if secret is not None and (not isinstance(secret, str) or row.secret_hash is None
                                   or not digest_matches(secret, row.secret_hash)):
            raise errors.InvalidClientMetadata("client_secret does not match this client's")
        # The metadata read against the policy; the registration rules are checked once,
        # on the result, by apply_changes.
        fields = registration_fields(metadata, policy(ctx))
        for fixed in ("token_endpoint_auth_method", "application_type"):
            if fields[fixed] != getattr(row, fixed):
                raise errors.InvalidClientMetadata(
                    f"{fixed} cannot be changed: register a new client")
        changes = {name: fields[name] for name in
                   ("name", "redirect_uris", "grant_types", "scopes",
                    "id_token_signed_response_alg", "require_pkce",
                    "post_logout_redirect_uris", "backchannel_logout_uri",
                    "backchannel_logout_session_required", "jwks", "jwks_uri",
                    "require_par", "dpop_bound_access_tokens", *DISPLAY_URIS,
                    "subject_type", "sector_identifier_uri")}
        # Scopes an operator made optional stay optional while still allowed.
        changes["optional_scopes"] = [s for s in row.optional_scopes or ()
                                      if s in changes["scopes"] and s != "openid"]
        try:
            config = admin.apply_changes(ctx, session, row, changes, f"client:{client_id}",
                                         sector)
        except RedirectUriRefused as refused:
            raise errors.InvalidRedirectUri(str(refused)) from None
        except InvalidInput as refused:
            raise errors.InvalidClientMetadata(str(refused)) from None
        issued_at = row.created_at
    ctx.clients.forget(client_id)
    return Registration(config, issued_at, None, token)


async def deregister(ctx: Context, client_id: str, token: str) -> None:
    """RFC 7592 §2.3: the client and everything issued to it; its tokens stop working."""
    _enabled(ctx)
    async with ctx.db.transaction() as session:
        row = await _own_row(session, client_id, token)
        await admin.delete_row(ctx, session, row, f"client:{client_id}")
    ctx.clients.forget(client_id)


def _initial_view(row: InitialAccessToken) -> InitialToken:
    return InitialToken(row.id, row.note, row.created_by, row.created_at, row.expires_at,
                        row.uses_left)


async def issue_initial_token(ctx: Context, *, uses: int = 1, expires_in: int = 86_400,
                              note: str = "", actor: str = "cli"
                              ) -> tuple[InitialToken, str]:
    """An initial access token (RFC 7591 §3) good for `uses` registrations within
    `expires_in` seconds, and the token itself, shown once (stored as a digest)."""
    if not 1 <= uses <= MAX_INITIAL_TOKEN_USES:
        raise InvalidInput(f"uses must be between 1 and {MAX_INITIAL_TOKEN_USES}")
    if not 60 <= expires_in <= MAX_INITIAL_TOKEN_SECONDS:
        raise InvalidInput(f"expires_in must be between 60 and {MAX_INITIAL_TOKEN_SECONDS} "
                           "seconds")
    token, now = new_handle(), ctx.now()
    row = InitialAccessToken(id=new_handle(12), token_hash=digest(token), note=note[:200],
                             created_by=actor[:64], created_at=now, expires_at=now + expires_in,
                             uses_left=uses)
    view = _initial_view(row)
    async with ctx.db.transaction() as session:
        session.add(row)
        audit.record(session, now, actor, "registration_token.issue", "registration_token",
                     row.id, None, asdict(view))
    return view, token


async def list_initial_tokens(ctx: Context) -> list[InitialToken]:
    """The tokens not yet expired, newest first (used-up ones too, until they expire)."""
    async with ctx.db.transaction(read_only=True) as session:
        rows = await session.scalars(
            select(InitialAccessToken).where(InitialAccessToken.expires_at > ctx.now())
            .order_by(InitialAccessToken.created_at.desc(), InitialAccessToken.id))
        return [_initial_view(row) for row in rows]


async def revoke_initial_token(ctx: Context, token_id: str, *, actor: str = "cli") -> None:
    async with ctx.db.transaction() as session:
        row = await session.get(InitialAccessToken, token_id[:32])
        if row is None:
            raise NotFound(f"no registration token {token_id[:32]}")
        before = asdict(_initial_view(row))
        await session.delete(row)
        audit.record(session, ctx.now(), actor, "registration_token.revoke",
                     "registration_token", token_id, before, None)

