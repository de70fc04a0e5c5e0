"""The whole authorization code + PKCE flow, end to end through HTTP."""

from __future__ import annotations

import httpx
import jwt as pyjwt

from idp.services.context import Context
from tests.conftest import ISSUER
from tests.helpers import Flow, get_code, make_app, make_user, redeem


async def test_code_flow_returns_verifiable_tokens(client: httpx.AsyncClient, ctx: Context) -> None:
    app = await make_app(ctx)
    sub = await make_user(ctx, name="Alice Example")
    flow = Flow(app)
    code = await get_code(client, flow)
    response = await redeem(client, flow, code)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    jwks = (await client.get("/jwks")).json()
    header = pyjwt.get_unverified_header(body["id_token"])
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims = pyjwt.decode(body["id_token"], pyjwt.PyJWK(key).key, algorithms=["RS256"],
                          audience=app.client_id, issuer=ISSUER)
    assert claims["sub"] == sub
    assert claims["nonce"] == flow.nonce
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    info = await client.get("/userinfo", headers=bearer)
    assert info.status_code == 200, info.text
    body = info.json()
    consent = body.pop("consent")
    assert consent["scopes"] == ["openid", "profile", "email"]
    assert consent["grant_id"] == claims["consent"]["grant_id"]
    assert body == {"sub": sub, "name": "Alice Example", "email": "alice@example.com",
                    "email_verified": True, "updated_at": body["updated_at"]}
    assert isinstance(body["updated_at"], int)
