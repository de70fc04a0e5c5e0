"""What every admin route shares: the token check, the scopes, the error vocabulary."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import OAuth2
from pydantic import BaseModel, Field

from idp import errors
from idp.services.tokens.bearer import authenticate_client_bearer
from idp.web.deps import CtxDep

READ, WRITE = "admin:read", "admin:write"

# Swagger UI's "Authorize" button: client_credentials at our own token endpoint.
oauth2 = OAuth2(
    flows=OAuthFlows(clientCredentials=OAuthFlowClientCredentials(
        tokenUrl="/token", scopes={READ: "read everything the admin API shows",
                                   WRITE: "change it (implies reading)"})),
    scheme_name="admin", auto_error=False,
    description="An access token of an admin client (`idp admin bootstrap`), from /token "
                "with grant_type=client_credentials.")


class Problem(BaseModel):
    """RFC 6749 / RFC 6750 error vocabulary."""

    error: str = Field(examples=["invalid_request"])
    error_description: str | None = Field(default=None,
                                          examples=["redirect URI must use https"])


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "invalid_request: the input breaks a rule"},
    401: {"model": Problem, "description": "invalid_token: none, unknown, expired or revoked"},
    403: {"model": Problem, "description": "insufficient_scope: admin:write is needed"},
    404: {"model": Problem, "description": "not_found"},
}


async def _token(authorization: Annotated[str | None, Security(oauth2)]) -> str:
    if not authorization:
        raise errors.InvalidToken("An access token is required (Authorization: Bearer ...)")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise errors.InvalidToken("An access token is required (Authorization: Bearer ...)")
    return value.strip()


async def reader(ctx: CtxDep, token: Annotated[str, Depends(_token)]) -> str:
    claims = await authenticate_client_bearer(ctx, token, (READ, WRITE))
    return str(claims["client_id"])


async def writer(ctx: CtxDep, token: Annotated[str, Depends(_token)]) -> str:
    claims = await authenticate_client_bearer(ctx, token, (WRITE,))
    return str(claims["client_id"])


Reader = Annotated[str, Depends(reader)]
Writer = Annotated[str, Depends(writer)]


def new_router() -> APIRouter:
    """A router of admin operations: the admin scheme (so /docs can authorize) and the error
    answers every one of them may give. `idp.routes.admin.router` mounts them at /admin/v1."""
    return APIRouter(tags=["Admin"], responses=ERRORS, dependencies=[Security(oauth2)])
