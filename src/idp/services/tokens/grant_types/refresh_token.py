"""RFC 6749 §6 with rotation and reuse detection (RFC 9700 §4.14.2), OIDC Core §12."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from idp import errors
from idp.crypto.handles import digest, new_handle
from idp.crypto.keys import KeyRing
from idp.domain import ClientConfig
from idp.protocol.consent import ConsentAsk, covers
from idp.protocol.scopes import parse_scope
from idp.services.consent.grants import grant_view
from idp.services.context import Context
from idp.services.tokens.dpop import BOUND_KEY
from idp.services.tokens.grant_types import grant_handler, token_response
from idp.services.tokens.issuance import (
    Authentication,
    Subject,
    mint_access_token,
    mint_id_token,
    mint_refresh_token,
    refresh_token_binding,
)
from idp.store import grants as grant_store
from idp.store import purposes as purpose_store
from idp.store import tokens as token_store
from idp.store.models import Grant, RefreshToken
from idp.store.prepared import Connection
from idp.store.tokens import GrantState

# RFC 8628 devices: what the device's developer shows, so the customer starts again.
CONSENT_AGAIN = ("The customer's consent for this app has changed or was withdrawn; consent "
                 "must be given again: start a new device authorization")


@grant_handler("refresh_token")
async def refresh_token_grant(ctx: Context, client: ClientConfig, form: Mapping[str, str]
                              ) -> dict[str, Any]:
    presented = form.get("refresh_token")
    if not presented or len(presented) > 128:
        raise errors.InvalidRequest("refresh_token is missing")
    token_hash = digest(presented)
    ring = await ctx.keys.ring()
    now = ctx.now()
    raw_scope = form.get("scope")
    requested = parse_scope(raw_scope) if raw_scope is not None else None
    if ctx.db.dialect == "postgresql" and requested != []:
        body = await _rotate_in_one_statement(ctx, ring, client, token_hash, now, raw_scope,
                                              requested)
        if body is not None:
            return body
    # The general path: every refresh on SQLite; on PostgreSQL a device's, and every one the
    # single statement left alone, to be refused (or a rotation that lost a race, as reuse).
    failure: errors.OAuthError
    # Lock, claim, insert: Prepared statements in one short transaction (on PostgreSQL
    # asyncpg's own, nothing of SQLAlchemy's around them).
    async with ctx.db.atomic() as connection:
        locked = await token_store.lock_grant_of_refresh_token(connection, token_hash)
        # One conditional update: of concurrent refreshes of one token exactly one wins.
        row = await token_store.claim_refresh_token(connection, token_hash, client.client_id,
                                                    now, BOUND_KEY.get())
        if row is not None:
            try:
                granted = list(row.scopes)
                scopes = narrow_scope(raw_scope, granted)
                grant, user = (locked.grant, locked.user) if locked else (None, None)
                if grant is None or grant.revoked_at is not None or user is None or (
                        grant.id != row.grant_id or user.id != row.user_id):
                    if row.device:
                        raise errors.InvalidGrant(CONSENT_AGAIN)
                    raise errors.InvalidGrant("The grant behind this token was revoked")
                if row.device and not await _consent_current(connection, client, grant,
                                                             granted):
                    raise errors.InvalidGrant(CONSENT_AGAIN)
                assert locked is not None  # the grant and user above are its
                subject = _subject(ctx, client, row, locked)
                # RFC 6749 §6: the new refresh token keeps the original scope.
                refresh_token = await mint_refresh_token(
                    ctx, connection, client, subject, granted, row.claims, row.expires_at,
                    code_hash=row.code_hash, device=row.device)
                return _answer(ctx, ring, client, row, subject, scopes, refresh_token)
            except errors.OAuthError as exc:
                failure = exc  # the claim stands: the token was presented and is spent
    if row is None:
        failure = await _refused(ctx, client, token_hash, now)
    raise failure


async def _rotate_in_one_statement(ctx: Context, ring: KeyRing, client: ClientConfig,
                                   token_hash: str, now: int, raw_scope: str | None,
                                   requested: list[str] | None) -> dict[str, Any] | None:
    """PostgreSQL: the rotation of a token every check passes, in one statement (lock, claim
    and successor, `token_store.rotate_refresh_token`), its own transaction: one round trip
    where the general path takes five (BEGIN and COMMIT among them), and the grant's lock
    is not held while the tokens are signed. None when it left the token as it was."""
    refresh_token = new_handle()
    successor = token_store.Successor(
        digest(refresh_token), now + ctx.settings.refresh_token_idle_ttl,
        refresh_token_binding(client))
    async with ctx.db.statements() as connection:
        rotated = await token_store.rotate_refresh_token(
            connection, token_hash, client.client_id, now, BOUND_KEY.get(), requested,
            successor)
    if rotated is None:
        return None
    row, locked = rotated
    # The statement rotated only a scope that narrows the token's; narrowed here the same way.
    scopes = narrow_scope(raw_scope, list(row.scopes))
    return _answer(ctx, ring, client, row, _subject(ctx, client, row, locked), scopes,
                   refresh_token)


def _subject(ctx: Context, client: ClientConfig, row: RefreshToken, locked: GrantState
             ) -> Subject:
    auth = Authentication(row.auth_time, tuple(row.amr), row.acr, row.sid, None)
    return Subject(ctx.subject_of(client, locked.user.id), locked.user, locked.grant, auth,
                   locked.standing)


def _answer(ctx: Context, ring: KeyRing, client: ClientConfig, row: RefreshToken,
            subject: Subject, scopes: list[str], refresh_token: str) -> dict[str, Any]:
    """The token response of a rotation: a new access token, the successor refresh token,
    and with `openid` an ID token (OIDC Core §12.2: same sub, original auth_time, no nonce)."""
    access_token = mint_access_token(ctx, ring, client, subject, scopes, row.claims,
                                     row.code_hash)
    body = token_response(access_token, ctx.settings.access_token_ttl, scopes)
    body["refresh_token"] = refresh_token
    if "openid" in scopes:
        body["id_token"] = mint_id_token(ctx, ring, client, subject, scopes, row.claims,
                                         access_token, include_nonce=False)
    return body


async def _consent_current(connection: Connection, client: ClientConfig, grant: Grant,
                           scopes: list[str]) -> bool:
    """Issue 13 item 2: a device cannot show a consent page, so its refresh is where an
    outdated consent stops it: a purpose of the app raised to a new version, or a scope or
    purpose the customer withdrew. A browser app's next authorization asks again instead."""
    purposes = await purpose_store.purposes_of_client(connection, client.client_id)
    optional = frozenset(client.optional_scopes) & set(scopes) - {"openid"}
    return covers(grant_view(grant), ConsentAsk(tuple(scopes), optional, (), purposes))


async def _refused(ctx: Context, client: ClientConfig, token_hash: str, now: int
                   ) -> errors.OAuthError:
    """Why a refresh token could not be claimed. RFC 9700 §4.14.2: a rotated token that
    comes back has leaked, so every token of its grant is revoked (committed before the
    error is returned), under the grant's lock as every refresh takes it."""
    async with ctx.db.transaction() as session:
        await token_store.lock_grant_of_refresh_token(session, token_hash)
        previous = await token_store.get_refresh_token(session, token_hash)
        if previous is not None and previous.client_id == client.client_id and (
                previous.used_at is not None and previous.revoked_at is None):
            await token_store.revoke_by_grant(session, previous.grant_id, now)
            return errors.InvalidGrant("The refresh token was already used")
        if previous is not None and previous.device and previous.client_id == client.client_id:
            # A device's token revoked with its grant: the customer withdrew the consent.
            grant = await grant_store.get_grant(session, previous.grant_id)
            if grant is None or grant.revoked_at is not None:
                return errors.InvalidGrant(CONSENT_AGAIN)
        if previous is not None and previous.client_id == client.client_id and (
                previous.dpop_jkt is not None and previous.dpop_jkt != BOUND_KEY.get()):
            # RFC 9449 §5: bound to a key this request proved no possession of. It stays
            # live for the client that holds the key.
            return errors.InvalidGrant(
                "The refresh token is bound to a DPoP key: send a DPoP proof of that key")
    return errors.InvalidGrant("The refresh token is invalid, expired or revoked")


def narrow_scope(raw: str | None, granted: list[str]) -> list[str]:
    """RFC 6749 §6: the requested scope may narrow, never widen, the original grant."""
    if raw is None:
        return granted
    requested = parse_scope(raw)
    if not requested:
        raise errors.InvalidScope("scope is empty")
    extra = [s for s in requested if s not in granted]
    if extra:
        raise errors.InvalidScope(f"scope {extra[0]} exceeds what was granted")
    return requested
