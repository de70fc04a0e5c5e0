"""Releasing profile data to apps as the customer's consent allows (issue 16 item 2): custom
attributes as claims under operator scopes in ID tokens and UserInfo, and the attributes the
Profile API shows. Everything is decided on the live grant, so a withdrawn purpose stops
every release at once; the customer's CPRA choice comes with the grant (`Standing`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from idp.protocol.privacy import Standing, effective_purposes
from idp.protocol.profile import ProfileSchema
from idp.protocol.profile_release import claim_names, readable, withheld_standard
from idp.services.context import Context
from idp.services.profile import access_log
from idp.services.profile.cache import current_schema
from idp.store.models import Grant, User


def granted_purposes(grant: Grant, standing: Standing) -> frozenset[str]:
    """The purposes the grant covers now: a sale-or-share purpose counts as declined while
    the customer opted out of sale and sharing (idp.protocol.privacy)."""
    return frozenset(str(p["id"]) for p in effective_purposes(grant.purposes,
                                                               standing.withheld))


def profile_claims(schema: ProfileSchema, user: User, grant: Grant, scopes: list[str],
                   target: str, claims_param: dict[str, Any] | None, standing: Standing,
                   released: dict[str, Any]) -> dict[str, Any]:
    """`released` (the standard claims OIDC scopes and the `claims` request give `target`)
    with the custom attributes the consent allows, less a sensitive standard claim the
    customer's CPRA choice keeps back."""
    granted = granted_purposes(grant, standing)
    limit = standing.privacy.limit_sensitive_use
    profile = user.profile or {}
    custom = claim_names(schema, scopes, granted, target, claims_param, limit)
    kept_back = withheld_standard(schema, released, granted, limit)
    body = {name: value for name, value in released.items() if name not in kept_back}
    body.update({name: profile[name] for name in sorted(custom) if name in profile})
    return body


def readable_values(schema: ProfileSchema, user: User, grant: Grant, scopes: list[str],
                    standing: Standing) -> dict[str, Any]:
    """What the Profile API shows the app: its attributes for granted purposes and the
    standard claims of its granted scopes (the account's address and whether it was
    verified under `email`)."""
    names = readable(schema, scopes, granted_purposes(grant, standing),
                     standing.privacy.limit_sensitive_use)
    profile = user.profile or {}
    values = {name: profile[name] for name in sorted(names) if name in profile}
    if "email" in scopes and user.email is not None:
        values.update(email=user.email, email_verified=user.email_verified)
    return values


@dataclass
class Issuing:
    schema: ProfileSchema
    releases: list[access_log.Release] = field(default_factory=list)


_issuing: ContextVar[Issuing | None] = ContextVar("idp_profile_issuing", default=None)


@asynccontextmanager
async def issuing(ctx: Context) -> AsyncIterator[None]:
    """Around one token request: the schema its ID tokens release by, read before its unit
    of work opens, and the releases it makes, recorded once its tokens are committed (an
    error leaves nothing on record)."""
    state = Issuing(await current_schema(ctx))
    token = _issuing.set(state)
    try:
        yield
    finally:
        _issuing.reset(token)
    await access_log.record(ctx, *state.releases)


def id_token_claims(ctx: Context, user: User, grant: Grant, client_id: str, scopes: list[str],
                    claims_param: dict[str, Any] | None, standing: Standing,
                    released: dict[str, Any]) -> dict[str, Any]:
    """The ID token's end-user claims inside a token request (`issuing`); outside one, the
    standard claims only."""
    state = _issuing.get()
    if state is None:
        return released
    body = profile_claims(state.schema, user, grant, scopes, "id_token", claims_param,
                          standing, released)
    state.releases.append(access_log.release(user.id, client_id, "id_token", body,
                                             ctx.now()))
    return body
