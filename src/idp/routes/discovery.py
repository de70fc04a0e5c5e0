"""Provider metadata (OIDC Discovery 1.0, RFC 8414) and the JWKS (RFC 7517)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from idp.protocol.discovery import oauth_metadata, openid_metadata
from idp.services.context import Context
from idp.web.deps import CtxDep

router = APIRouter(tags=["Discovery"])
CACHE = {"Cache-Control": "public, max-age=300"}
Document = Callable[[str, bool, bool, tuple[str, ...]], dict[str, Any]]


@lru_cache(maxsize=8)
def _encoded(document: Document, issuer: str, registration: bool, require_par: bool,
             languages: tuple[str, ...]) -> bytes:
    """The metadata depends on settings alone: built and encoded once per process."""
    return json.dumps(document(issuer, registration, require_par, languages),
                      separators=(",", ":")).encode()


def _document(ctx: Context, document: Document) -> Response:
    settings = ctx.settings
    return Response(_encoded(document, settings.issuer, settings.registration != "off",
                             settings.require_pushed_authorization_requests,
                             settings.languages),
                    headers=CACHE, media_type="application/json")


@router.get("/.well-known/openid-configuration", summary="OpenID Provider metadata",
            response_model=None)
async def openid_configuration(ctx: CtxDep) -> Response:
    return _document(ctx, openid_metadata)


@router.get("/.well-known/oauth-authorization-server",
            summary="OAuth 2.0 Authorization Server metadata (RFC 8414)", response_model=None)
async def oauth_authorization_server(ctx: CtxDep) -> Response:
    return _document(ctx, oauth_metadata)


@router.get("/jwks", summary="JSON Web Key Set", response_model=None)
async def jwks(ctx: CtxDep) -> Response:
    ring = await ctx.keys.ring()
    # Short cache: a rotation is picked up within a minute by well-behaved clients.
    return Response(ring.jwks_json, headers={"Cache-Control": "public, max-age=60"},
                    media_type="application/jwk-set+json")
