"""Provider metadata (OIDC Discovery 1.0, RFC 8414) and the JWKS (RFC 7517)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from idp.protocol.discovery import oauth_metadata, openid_metadata
from idp.web.deps import CtxDep

router = APIRouter(tags=["Discovery"])
CACHE = {"Cache-Control": "public, max-age=300"}


@router.get("/.well-known/openid-configuration", summary="OpenID Provider metadata")
async def openid_configuration(ctx: CtxDep) -> JSONResponse:
    return JSONResponse(openid_metadata(ctx.settings.issuer), headers=CACHE)


@router.get("/.well-known/oauth-authorization-server",
            summary="OAuth 2.0 Authorization Server metadata (RFC 8414)")
async def oauth_authorization_server(ctx: CtxDep) -> JSONResponse:
    return JSONResponse(oauth_metadata(ctx.settings.issuer), headers=CACHE)


@router.get("/jwks", summary="JSON Web Key Set")
async def jwks(ctx: CtxDep) -> JSONResponse:
    ring = await ctx.keys.ring()
    body: dict[str, Any] = ring.jwks()
    # Short cache: a rotation is picked up within a minute by well-behaved clients.
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=60"},
                        media_type="application/jwk-set+json")
