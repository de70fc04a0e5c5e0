"""IDP_ACCESS_TOKEN_SIGNING_ALG: access tokens are ES256 by default (see test_tokens.py) and
RS256 when an operator's resource servers need it; the JWKS publishes both."""

from __future__ import annotations

import httpx
import jwt as pyjwt
import pytest

from idp.services.context import Context
from idp.settings import Settings
from tests.conftest import ISSUER, make_settings
from tests.helpers import make_app


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, access_token_signing_alg="RS256")


async def test_rs256_access_tokens_when_configured(client: httpx.AsyncClient,
                                                   ctx: Context) -> None:
    app = await make_app(ctx, name="Backend", grant_types=["client_credentials"],
                         scopes=["orders:read"])
    body = (await client.post("/token", data={"grant_type": "client_credentials"},
                              headers=app.basic())).json()
    header = pyjwt.get_unverified_header(body["access_token"])
    assert (header["alg"], header["typ"]) == ("RS256", "at+jwt")
    jwk = next(k for k in (await client.get("/jwks")).json()["keys"] if k["kid"] == header["kid"])
    claims = pyjwt.decode(body["access_token"], pyjwt.PyJWK(jwk).key, algorithms=["RS256"],
                          audience=ISSUER)
    assert claims["client_id"] == app.client_id
    introspected = (await client.post("/introspect", data={"token": body["access_token"]},
                                      headers=app.basic())).json()
    assert introspected["active"] is True


def test_only_es256_or_rs256() -> None:
    with pytest.raises(ValueError, match="access_token_signing_alg"):
        Settings(dev_mode=True, access_token_signing_alg="HS256")
