"""The authorization's last step (STYLE.md `respond`): the code for the client's verified
redirect URI (RFC 6749 §4.1.2, RFC 9207 `iss`), or the device's approval or denial (RFC 8628).
In the caller's unit of work."""

from __future__ import annotations

from dataclasses import dataclass

from idp import errors
from idp.crypto.handles import digest, new_handle
from idp.domain import AuthorizationRequest, SessionInfo
from idp.services.context import Context
from idp.store import codes as code_store
from idp.store import device_codes as device_store
from idp.store import sessions as session_store
from idp.store.prepared import Connection, orm_session


@dataclass(frozen=True)
class AuthorizationResponse:
    """What goes back to the client's verified redirect URI (RFC 6749 §4.1.2, RFC 9207)."""

    redirect_uri: str
    response_mode: str
    params: dict[str, str]


async def approve_device(ctx: Context, connection: Connection, request: AuthorizationRequest,
                         browser_session: SessionInfo, grant_id: str) -> AuthorizationResponse:
    """RFC 8628 §3.3: the customer approved the device's request; its next poll redeems it.
    The device's tokens carry no browser session (`sid`): signing out on the phone does not
    sign the speaker out; withdrawing the app's consent does."""
    assert request.device_code_hash is not None
    async with orm_session(connection) as session:
        approved = await device_store.settle(
            session, request.device_code_hash, ctx.now(), device_store.APPROVED,
            user_id=browser_session.user_id, grant_id=grant_id, scopes=list(request.scopes),
            auth_time=browser_session.auth_time, amr=list(browser_session.amr),
            acr=browser_session.acr)
    if not approved:
        raise errors.InvalidRequest("The code from the device has expired or was already "
                                    "used. Start again on the device.", redirectable=False)
    return AuthorizationResponse(request.redirect_uri, "query",
                                 {"result": "approved", "iss": ctx.settings.issuer})


async def deny_device(ctx: Context, connection: Connection, request: AuthorizationRequest
                      ) -> None:
    """The customer said no, or the request failed: the device's next poll gets
    access_denied (RFC 8628 §3.5)."""
    if request.device_code_hash is not None:
        async with orm_session(connection) as session:
            await device_store.settle(session, request.device_code_hash, ctx.now(),
                                      device_store.DENIED)


async def issue_code(ctx: Context, session: Connection, request: AuthorizationRequest,
                     browser_session: SessionInfo, grant_id: str) -> AuthorizationResponse:
    now = ctx.now()
    code = new_handle()
    await code_store.add_code(
        session,
        code_hash=digest(code),
        client_id=request.client_id,
        user_id=browser_session.user_id,
        grant_id=grant_id,
        redirect_uri=request.redirect_uri,
        code_challenge=request.code_challenge,
        nonce=request.nonce,
        scopes=list(request.scopes),
        claims=request.claims,
        sid=browser_session.sid,
        auth_time=browser_session.auth_time,
        amr=list(browser_session.amr),
        acr=browser_session.acr,
        created_at=now,
        expires_at=now + ctx.settings.authorization_code_ttl,
        used_at=None,
        dpop_jkt=request.dpop_jkt,
    )
    await session_store.record_client(session, browser_session, request.client_id, now)
    params = {"code": code}
    if request.state is not None:
        params["state"] = request.state
    params["iss"] = ctx.settings.issuer
    return AuthorizationResponse(request.redirect_uri, request.response_mode, params)
