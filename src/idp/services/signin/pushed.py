"""Pushed authorization requests (RFC 9126): a client sends its authorization request to
/par over the back channel, authenticated as at the token endpoint, and gets a request_uri
to send the browser to /authorize with. The request is validated when pushed, stored for a
minute, and validated again when redeemed, once, by the same client."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from idp import errors
from idp.crypto.handles import digest, new_handle
from idp.protocol import authorize as checks
from idp.services.context import Context
from idp.services.tokens.client_auth import authenticated_client
from idp.services.tokens.dpop import bind_pushed_request
from idp.store import interactions as interaction_store

# RFC 9126 §2.2: a URN the client treats as opaque.
REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
PUSHED_REQUEST_SECONDS = 60
# How the client authenticated: not part of the authorization request, never stored.
_CLIENT_CREDENTIALS = ("client_secret", "client_assertion", "client_assertion_type")


async def push(ctx: Context, form: Mapping[str, str], repeated: set[str],
               authorization: str | None, dpop: Sequence[str] = ()) -> tuple[str, int]:
    """The request_uri and its lifetime in seconds, or the error the authorization endpoint
    would have given, as JSON (§2.3). `dpop`: the request's DPoP headers, whose key the code
    is bound to (RFC 9449 §10.1)."""
    client = await authenticated_client(ctx, form, repeated, authorization)
    if "request_uri" in form:
        raise errors.InvalidRequest("request_uri must not be pushed (RFC 9126 §2.1)")
    values = {name: value for name, value in form.items() if name not in _CLIENT_CREDENTIALS}
    values["client_id"] = client.client_id
    jkt = await bind_pushed_request(ctx, dpop)
    if jkt is not None and values.setdefault("dpop_jkt", jkt) != jkt:
        # RFC 9449 §10.1: both ways at once must name the same key.
        raise errors.InvalidRequest("dpop_jkt does not match the key of the DPoP proof")
    target = checks.check_redirect_uri(values, set(), client, ctx.settings.dev_mode)
    checks.check_request(values, set(), target,
                         ctx.settings.require_pkce_for_confidential_clients)
    handle, now = new_handle(), ctx.now()
    async with ctx.db.transaction() as session:
        interaction_store.add_pushed(session, digest(handle), client.client_id, values, now,
                                     now + PUSHED_REQUEST_SECONDS)
    return REQUEST_URI_PREFIX + handle, PUSHED_REQUEST_SECONDS


async def redeem(ctx: Context, values: dict[str, str], repeated: set[str]) -> dict[str, str]:
    """The pushed parameters a request_uri names, taken once (§4): only they count, plus
    the client_id the browser brought, which must be the pushing client's."""
    client_id = values.get("client_id")
    if not client_id or "client_id" in repeated:
        raise errors.InvalidRequest("client_id is missing or repeated", redirectable=False)
    request_uri = values.get("request_uri", "")
    handle = request_uri.removeprefix(REQUEST_URI_PREFIX)
    if "request_uri" in repeated or handle == request_uri or not 0 < len(handle) <= 128:
        raise errors.InvalidRequestUri()
    async with ctx.db.transaction() as session:
        pushed = await interaction_store.take_pushed(session, digest(handle), client_id[:64],
                                                     ctx.now())
    if pushed is None:
        raise errors.InvalidRequestUri()
    return {**{str(k): str(v) for k, v in pushed.items()}, "client_id": client_id}
