"""OpenID Connect RP-Initiated Logout 1.0.

The session ends without a question only when the request proves it comes from an app of this
very session (an `id_token_hint` whose `sid` is the browser's session). Anything else is asked
on a confirmation page, so a third-party site cannot sign customers out (logout CSRF).
Post-logout redirection happens only to a URI registered for the identified client, compared
by exact string match (§3.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from idp import errors
from idp.crypto.handles import digest
from idp.domain import ClientConfig
from idp.protocol.authorize import Params, single_values
from idp.protocol.redirect_uri import exactly_registered
from idp.services.context import Context
from idp.services.signin.sessions import end_session
from idp.store import clients as client_store
from idp.store import sessions as session_store

LOGOUT_PARAMETERS = ("id_token_hint", "logout_hint", "client_id", "post_logout_redirect_uri",
                     "state", "ui_locales")


@dataclass(frozen=True)
class LogoutRequest:
    params: dict[str, str]  # the validated parameters, carried through the confirmation page
    client: ClientConfig | None
    redirect_to: str | None  # verified post-logout redirect, with `state`
    hint_sid: str | None


@dataclass(frozen=True)
class LogoutDecision:
    request: LogoutRequest
    confirm: bool  # ask the customer first
    signed_in: bool


async def check_logout_request(ctx: Context, params: Params) -> LogoutRequest:
    values, repeated = single_values(params)
    if repeated:
        raise errors.InvalidRequest(f"parameter {sorted(repeated)[0]} is repeated",
                                    redirectable=False)
    values = {k: v for k, v in values.items() if k in LOGOUT_PARAMETERS and len(v) <= 16384}
    hint_claims = None
    if "id_token_hint" in values:
        # §2: the OP accepts its own ID tokens as hints even after they expired.
        hint_claims = await ctx.keys.verify_own(values["id_token_hint"], typ=None)
        if hint_claims is None:
            raise errors.InvalidRequest("id_token_hint is not an ID token of this provider",
                                        redirectable=False)
    client_id = values.get("client_id")
    hinted_client = None
    if hint_claims is not None:
        aud = hint_claims.get("aud")
        hinted_client = aud if isinstance(aud, str) else hint_claims.get("azp")
        if client_id is not None and client_id != hinted_client:
            raise errors.InvalidRequest("client_id does not match the id_token_hint",
                                        redirectable=False)
    client_id = client_id or (str(hinted_client) if hinted_client else None)
    client = None
    if client_id is not None:
        async with ctx.db.transaction() as session:
            client = await client_store.get_client(session, client_id)
        if client is None:
            raise errors.InvalidClient("The client is not known", redirectable=False)
    redirect_to = None
    uri = values.get("post_logout_redirect_uri")
    if uri is not None:
        if client is None:
            raise errors.InvalidRequest(
                "post_logout_redirect_uri needs client_id or id_token_hint", redirectable=False)
        # RP-Initiated Logout §3: "MUST have been previously registered", compared as the
        # redirect URI is (RFC 3986 §6.2.1, and never through a parser that rewrites it).
        if not exactly_registered(client.post_logout_redirect_uris, uri):
            raise errors.InvalidRequest(
                "post_logout_redirect_uri is not registered for this client", redirectable=False)
        redirect_to = uri
        if "state" in values:
            separator = "&" if "?" in uri else "?"
            redirect_to = f"{uri}{separator}{urlencode({'state': values['state']})}"
    hint_sid = hint_claims.get("sid") if hint_claims else None
    return LogoutRequest(values, client, redirect_to, str(hint_sid) if hint_sid else None)


async def decide_logout(ctx: Context, params: Params, session_cookie: str | None
                        ) -> LogoutDecision:
    request = await check_logout_request(ctx, params)
    live = None
    if session_cookie:
        async with ctx.db.transaction() as session:
            live = await session_store.find_live_session(session, digest(session_cookie),
                                                         ctx.now())
    if live is None:
        return LogoutDecision(request, confirm=False, signed_in=False)
    proven = request.hint_sid is not None and request.hint_sid == live.sid
    return LogoutDecision(request, confirm=not proven, signed_in=True)


async def log_out(ctx: Context, session_cookie: str | None) -> int:
    """End the browser's session; returns how many apps will be told by back-channel."""
    if not session_cookie:
        return 0
    async with ctx.db.transaction() as session:
        live = await session_store.find_live_session(session, digest(session_cookie), ctx.now())
        if live is None:
            return 0
        told = await end_session(ctx, session, live.sid)
    ctx.notify_outbox()
    return told
