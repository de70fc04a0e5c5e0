"""The authorization endpoint's use cases: begin a request, resume it after each page, issue the
code. One database transaction per call.

The steps, in order (STYLE.md, after node-oidc-provider): check_client → check_redirect_uri →
check_request → warn_on_reuse → load_session → load_grant → decide_interaction → issue_code |
show a page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from idp import errors
from idp.crypto.handles import digest, new_handle
from idp.domain import AuthorizationRequest, ClientConfig, SessionInfo
from idp.protocol import acr as contexts
from idp.protocol import authorize as checks
from idp.protocol.claims import requested_individual_claims, requested_sub
from idp.protocol.consent import ConsentAsk, PurposeInfo, covers
from idp.protocol.profile_release import requested_names
from idp.protocol.prompt import InteractionState, Step, decide_interaction
from idp.protocol.scopes import claims_for_scopes
from idp.services.consent.grants import grant_view
from idp.services.context import Context
from idp.services.profile import collect
from idp.services.signin import pushed as pushed_requests
from idp.services.signin import second_factor
from idp.services.signin.pending import load_interaction
from idp.services.signin.respond import (
    AuthorizationResponse,
    approve_device,
    deny_device,
    issue_code,
)
from idp.services.tokens import pairwise
from idp.services.upstream.profile_import import needs_answer
from idp.store import grants as grant_store
from idp.store import interactions as interaction_store
from idp.store import purposes as purpose_store
from idp.store import sessions as session_store
from idp.store.models import BrowserSession, Interaction
from idp.store.prepared import Connection, orm_session

log = logging.getLogger("idp.signin")
REUSE_WINDOW_SECONDS = 60


@dataclass(frozen=True)
class ShowPage:
    interaction_id: str
    step: Step


Outcome = AuthorizationResponse | ShowPage


def error_response(ctx: Context, target: checks.VerifiedTarget, exc: errors.OAuthError
                   ) -> AuthorizationResponse:
    params = {"error": exc.error}
    if exc.description:
        params["error_description"] = exc.description
    if target.state is not None:
        params["state"] = target.state
    params["iss"] = ctx.settings.issuer
    return AuthorizationResponse(target.redirect_uri, target.response_mode, params)


def _target_of(request: AuthorizationRequest, client: ClientConfig) -> checks.VerifiedTarget:
    return checks.VerifiedTarget(client, request.redirect_uri, request.response_mode, request.state)


async def begin_authorization(ctx: Context, params: checks.Params, browser_id: str,
                              session_cookie: str | None) -> Outcome:
    """Validate a request from /authorize and either answer it or start an interaction.

    Errors raised before the redirect URI is verified propagate (an error page); later ones
    are returned as redirects to the client.
    """
    values, repeated = checks.single_values(params)
    # Our own request_uri (RFC 9126); any other is a request object by reference, refused
    # below as OIDC Core §6.2 says.
    pushed = values.get("request_uri", "").startswith(pushed_requests.REQUEST_URI_PREFIX)
    if pushed:
        # RFC 9126 §4: the pushed request, taken once; the query's other parameters are not
        # part of it.
        values, repeated = await pushed_requests.redeem(ctx, values, repeated), set()
    hint = await _verify_hint(ctx, values.get("id_token_hint"))
    # The registration from the client cache, before the unit of work opens (its own
    # connection on a miss: on SQLite the unit of work holds the write lock); a change made
    # in another process decides here within Settings.client_cache_seconds.
    client = await ctx.clients.get(values.get("client_id", ""))
    async with ctx.db.transaction() as session:
        checks.check_client(values, repeated, client)
        assert client is not None
        target = checks.check_redirect_uri(values, repeated, client, ctx.settings.dev_mode)
        try:
            if not pushed and (client.require_par or
                               ctx.settings.require_pushed_authorization_requests):
                raise errors.InvalidRequest("This client must push its authorization "
                                            "requests to the pushed authorization request "
                                            "endpoint first (RFC 9126)")
            request = checks.check_request(
                values, repeated, target, ctx.settings.require_pkce_for_confidential_clients
            )
            hinted = _hinted_sub(request, hint)
            if hinted is not None:
                # OIDC Core §8.1: a pairwise client names the end-user by its own `sub`.
                audience = hint.get("aud") if hint is not None else None
                hinted = await pairwise.account_named(
                    ctx, session, client, hinted,
                    audience if isinstance(audience, str) else None)
            request = replace(request, hinted_sub=hinted)
            await warn_on_reuse(ctx, session, request)
            return await _advance(ctx, session, client, request, browser_id, session_cookie,
                                  interaction=None)
        except errors.OAuthError as exc:
            if not exc.redirectable:
                raise
            return error_response(ctx, target, exc)


async def continue_request(ctx: Context, session: AsyncSession, client: ClientConfig,
                           request: AuthorizationRequest, browser_id: str,
                           session_cookie: str | None) -> Outcome:
    """An authorization request validated earlier, taken up again in this browser, in the
    caller's unit of work: a device's once the customer confirmed its code (RFC 8628 §3.3),
    or the one a registration began before its mail round trip. It goes through the same
    steps as one fresh from /authorize."""
    if request.device_code_hash is None and request.redirect_uri not in client.redirect_uris:
        # The registration changed in between: RFC 6749 §3.1.2.4, never to an unregistered URI.
        raise errors.InvalidRequest("The app's sign-in address has changed; return to the app "
                                    "and start again", redirectable=False)
    try:
        return await _advance(ctx, session, client, request, browser_id, session_cookie,
                              interaction=None)
    except errors.OAuthError as exc:
        if not exc.redirectable:
            raise
        await deny_device(ctx, session, request)
        return error_response(ctx, _target_of(request, client), exc)


async def warn_on_reuse(ctx: Context, session: AsyncSession, request: AuthorizationRequest
                        ) -> None:
    """RFC 9700 §2.1.1: the code_challenge and the nonce "MUST be transaction-specific"; a
    client that sends one again within a minute has a broken generator or is replaying
    requests (§4.8.2). Logged for the operator with the client and what was reused, never the
    values; nothing is refused."""
    values = {name: value for name, value in (("code_challenge", request.code_challenge),
                                              ("nonce", request.nonce)) if value}
    reused = await interaction_store.recently_used(
        session, request.client_id, ctx.now() - REUSE_WINDOW_SECONDS, values)
    if reused:
        log.warning("client %s sent an authorization request reusing the %s of another "
                    "request of the last %d s; each request needs fresh values "
                    "(RFC 9700 §2.1.1)", request.client_id, " and ".join(sorted(reused)),
                    REUSE_WINDOW_SECONDS)


async def resume_authorization(ctx: Context, interaction_id: str, browser_id: str,
                               session_cookie: str | None) -> Outcome:
    async with ctx.db.transaction() as session:
        interaction, client = await load_interaction(ctx, session, interaction_id, browser_id)
        return await resume_in(ctx, session, interaction, client, browser_id, session_cookie)


async def resume_in(ctx: Context, session: Connection, interaction: Interaction,
                    client: ClientConfig, browser_id: str, session_cookie: str | None,
                    signed_in: SessionInfo | None = None) -> Outcome:
    """Continue a loaded interaction in the caller's unit of work (a page that has just
    signed the customer in issues the code in the same one). Changes to `interaction` must
    be flushed first: finishing it deletes its row. `signed_in`: the session the caller has
    just started at this interaction (with `session_cookie`), so it is neither read back nor
    written to the interaction unless the interaction goes on to another page."""
    request = AuthorizationRequest.from_json(interaction.request)
    try:
        return await _advance(ctx, session, client, request, browser_id, session_cookie,
                              interaction=interaction, signed_in=signed_in)
    except errors.OAuthError as exc:
        if not exc.redirectable:
            raise
        await interaction_store.delete_interaction(session, interaction.id)
        await deny_device(ctx, session, request)
        return error_response(ctx, _target_of(request, client), exc)


async def abort_authorization(ctx: Context, interaction_id: str, browser_id: str
                              ) -> AuthorizationResponse:
    """The end-user gave up (cancel on the login page, deny on the consent page)."""
    async with ctx.db.transaction() as session:
        interaction, client = await load_interaction(ctx, session, interaction_id, browser_id)
        request = AuthorizationRequest.from_json(interaction.request)
        await interaction_store.delete_interaction(session, interaction.id)
        await deny_device(ctx, session, request)
    return error_response(ctx, _target_of(request, client), errors.AccessDenied())


async def _verify_hint(ctx: Context, token: str | None) -> dict[str, Any] | None:
    """Claims of an `id_token_hint` we signed, or None. Called before the unit of work opens:
    reading the key set takes a connection of its own, which on SQLite would wait for the
    transaction's write lock (BEGIN IMMEDIATE) until the busy timeout."""
    if not token:
        return None
    # OIDC-09: the hint is one of our ID tokens; an expired one still names its end-user.
    return await ctx.keys.verify_own(token, typ=None)


def _hinted_sub(request: AuthorizationRequest, claims: dict[str, Any] | None) -> str | None:
    """The end-user the request names through `id_token_hint` or a `sub` claim request."""
    by_claims = requested_sub(request.claims)
    if request.id_token_hint is None:
        return by_claims
    if claims is None or not isinstance(claims.get("sub"), str):
        raise errors.InvalidRequest("id_token_hint is not a valid ID token of this provider")
    if by_claims is not None and by_claims != claims["sub"]:
        raise errors.LoginRequired("id_token_hint and the requested sub name different users")
    return str(claims["sub"])


async def consent_ask(session: Connection, client: ClientConfig,
                      request: AuthorizationRequest,
                      purposes: tuple[PurposeInfo, ...] | None = None) -> ConsentAsk:
    """What this request asks the customer to agree to: its scopes (optional ones as the client
    registered them; `openid` never is), individually requested claims, and the client's
    purposes at their current versions (`purposes`: as the caller read them just now)."""
    # A claim that a requested scope releases is consented with that scope, not on its own.
    claims = requested_individual_claims(request.claims) - claims_for_scopes(list(request.scopes))
    optional = frozenset(client.optional_scopes) & set(request.scopes) - {"openid"}
    if purposes is None:
        purposes = await purpose_store.purposes_of_client(session, client.client_id)
    return ConsentAsk(request.scopes, optional, tuple(sorted(claims)), purposes)


async def _advance(ctx: Context, session: Connection, client: ClientConfig,
                   request: AuthorizationRequest, browser_id: str, session_cookie: str | None,
                   interaction: Interaction | None, signed_in: SessionInfo | None = None
                   ) -> Outcome:
    now = ctx.now()
    contexts.check_essential_supported(request.claims)
    browser_session: SessionInfo | None = signed_in
    if signed_in is None and session_cookie:
        async with orm_session(session) as orm:
            browser_session = await session_store.find_live_session(
                orm, digest(session_cookie), now)
    grant, purposes = None, None
    step_up, has_second_factor = contexts.StepUp.NONE, False
    if browser_session is not None:
        # The customer's consent to this client and what the client asks it for, together.
        grant, purposes = await grant_store.grant_and_purposes(
            session, browser_session.user_id, client.client_id)
        step_up = contexts.step_up(request.acr_values, request.claims, client.require_mfa,
                                   browser_session.amr)
        if step_up is not contexts.StepUp.NONE:
            has_second_factor = await second_factor.needs_second_factor(
                session, browser_session.user_id)
    ask = await consent_ask(session, client, request, purposes)
    state = InteractionState(
        session=browser_session,
        authenticated_here=signed_in is not None or (
            interaction is not None
            and browser_session is not None
            and interaction.session_sid == browser_session.sid
        ),
        consented_here=interaction is not None and interaction.consent_given,
        # Issue 4 item 6: attributes an upstream login offered wait for the customer's answer
        # on the consent page, even when the app's consent already covers this request.
        consent_covered=covers(grant_view(grant), ask) and not (
            interaction is not None and needs_answer(interaction.pending_import))
        # Issue 16 item 3: attributes the app asks for that the profile lacks are asked on
        # the consent page (never under prompt=none: the app then goes without them).
        and not (browser_session is not None and "none" not in request.prompt and
                 await _fields_to_collect(session, browser_session.user_id, request,
                                          ask)),
        hinted_sub=request.hinted_sub,
        step_up=step_up,
        has_second_factor=has_second_factor,
    )
    step = decide_interaction(request, state, now)
    if step is Step.ISSUE:
        assert browser_session is not None and grant is not None
        browser_session = replace(browser_session, acr=contexts.chosen_acr(
            request.acr_values, request.claims, client.require_mfa, browser_session.amr))
        # Optional scopes the customer declined are left out of what the code carries.
        scopes = tuple(s for s in request.scopes if s in grant.scopes)
        if request.device_code_hash is not None:
            response = await approve_device(ctx, session, replace(request, scopes=scopes),
                                            browser_session, grant.id)
        else:
            response = await issue_code(ctx, session, replace(request, scopes=scopes),
                                        browser_session, grant.id)
        if interaction is not None:
            await interaction_store.delete_interaction(session, interaction.id)
        return response
    if interaction is None:
        interaction = Interaction(
            id=new_handle(24),
            browser_hash=digest(browser_id),
            client_id=client.client_id,
            request=request.to_json(),
            session_sid=None,
            consent_given=False,
            created_at=now,
            expires_at=now + ctx.settings.interaction_ttl,
        )
        await interaction_store.add_interaction(session, interaction)
    elif signed_in is not None:  # the next page sees it signed in here
        await interaction_store.signed_in_here(session, interaction, signed_in.sid)
    if step is Step.SECOND_FACTOR:
        assert browser_session is not None and session_cookie is not None
        await wait_to_step_up(ctx, session, interaction, browser_session, browser_id,
                              session_cookie)
    return ShowPage(interaction.id, step)


async def _fields_to_collect(connection: Connection, user_id: str,
                             request: AuthorizationRequest, ask: ConsentAsk) -> bool:
    """Attributes the app asks for (its `claims` request) that the profile lacks. Without
    such a request, no session is opened (collect.fields_to_collect would then read nothing
    either)."""
    if not requested_names(request.claims):
        return False
    async with orm_session(connection) as session:
        return bool(await collect.fields_to_collect(session, user_id, request.claims,
                                                    {p.id for p in ask.purposes}))


async def wait_to_step_up(ctx: Context, connection: Connection, interaction: Interaction,
                          browser_session: SessionInfo, browser_id: str, session_cookie: str
                          ) -> None:
    """Step-up (OIDC Core §5.5.1.1 "re-authenticate with additional factors"): what the
    live session proved waits for the account's second factor at this interaction, as a
    first factor typed here would. The code page then starts a new session (a new id,
    ATO-14) with both, and the authorization carries on; the password is not asked again
    unless `prompt=login` or `max_age` asked for it (needs_login, decided before)."""
    async with orm_session(connection) as session:
        row = await session.get(BrowserSession, digest(session_cookie))
    await second_factor.wait_for_second_factor(
        ctx, connection, browser_session.user_id, browser_id,
        second_factor.interaction_place(interaction.id), list(browser_session.amr),
        expires_at=interaction.expires_at, interaction_id=interaction.id,
        identity_id=row.identity_id if row is not None else None)
