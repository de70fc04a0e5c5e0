"""The Profile API (`/profile/v1/me`, issue 16 item 2): an app reads and writes the customer's
profile with an access token of its grant, only as far as the customer's consent allows.

Reads show the attributes whose purposes the customer granted to the app and the standard
claims of its granted scopes. Writes (JSON Merge Patch, RFC 7396: a value sets, null removes)
take attitudinal and behavioral attributes only, for a purpose the grant covers; each value
keeps the app as its source. The grant is judged live on every call, so a withdrawn consent
stops both at once (RFC 6750 §3.1 `invalid_token`)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from idp import errors
from idp.protocol.profile_release import serving_purposes, write_refusal
from idp.protocol.profile_values import ValueProblem, check_value
from idp.services.context import Context
from idp.services.profile import access_log
from idp.services.profile.cache import current_schema, schema_in
from idp.services.profile.release import granted_purposes, readable_values
from idp.services.profile.values import apply, locked_user
from idp.services.tokens.bearer import Bearer, authenticate_bearer
from idp.services.tokens.dpop import Presentation
from idp.store import profile as store
from idp.store.models import Grant, User
from idp.store.profile import Source

PATH = "/profile/v1/me"
MAX_BODY_BYTES = 16 * 1024
MAX_ATTRIBUTES = 100
MEDIA_TYPES = ("application/merge-patch+json", "application/json")


class PayloadTooLarge(errors.InvalidRequest):
    """RFC 9110 §15.5.14: the body is larger than this resource takes."""

    status_code = 413
    default_description = f"The request body exceeds {MAX_BODY_BYTES} bytes"


class UnsupportedMediaType(errors.InvalidRequest):
    """RFC 9110 §15.5.16."""

    status_code = 415
    default_description = "Send a JSON Merge Patch (application/merge-patch+json)"


async def read_profile(ctx: Context, access_token: str, presentation: Presentation
                       ) -> dict[str, Any]:
    bearer = await authenticate_bearer(ctx, access_token, presentation)
    return await _answer(ctx, bearer, bearer.user)


def parse_patch(body: bytes, content_type: str) -> dict[str, Any]:
    """The merge patch: a JSON object of attribute names to values (null removes one)."""
    if content_type.split(";")[0].strip().lower() not in MEDIA_TYPES:
        raise UnsupportedMediaType()
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge()
    try:
        patch = json.loads(body)
    except ValueError:
        raise errors.InvalidRequest("The request body is not valid JSON") from None
    if not isinstance(patch, dict):
        raise errors.InvalidRequest("The request body must be a JSON object of attributes")
    if len(patch) > MAX_ATTRIBUTES:
        raise errors.InvalidRequest(f"At most {MAX_ATTRIBUTES} attributes at once")
    return patch


async def write_profile(ctx: Context, access_token: str, presentation: Presentation,
                        body: bytes, content_type: str) -> dict[str, Any]:
    """Every attribute of the patch is checked before any is written: all or nothing."""
    bearer = await authenticate_bearer(ctx, access_token, presentation)
    patch = parse_patch(body, content_type)
    limit = bearer.standing.privacy.limit_sensitive_use
    async with ctx.db.transaction() as session:
        # The account's row, then the grant's, as erasure takes them (no deadlock between
        # them). Under the grant's lock a withdrawal at this moment waits for the write, or
        # the write sees the grant withdrawn and stores nothing.
        user = await locked_user(session, bearer.user.id)
        grant = await session.scalar(select(Grant).where(Grant.id == bearer.grant.id)
                                     .with_for_update())
        if user is None or grant is None or grant.revoked_at is not None or \
                grant.token_epoch != bearer.grant.token_epoch:
            raise errors.InvalidToken()
        schema = await schema_in(session)
        granted = granted_purposes(grant, bearer.standing)
        checked: dict[str, tuple[Any, tuple[str, ...]]] = {}
        for name, value in patch.items():
            defn = schema.attributes.get(name)
            if defn is None:
                raise errors.InvalidRequest(f"{name[:64]}: no such attribute")
            refusal = write_refusal(defn, granted, schema.legal_bases, limit)
            if refusal is not None:
                raise errors.InsufficientScope(refusal)
            try:
                stored = None if value is None else check_value(defn, value)
            except ValueProblem as problem:
                raise errors.InvalidRequest(f"{name}: {problem}") from None
            checked[name] = (stored, serving_purposes(defn, granted, schema.legal_bases,
                                                      limit))
        now = ctx.now()
        for name, (stored, purposes) in checked.items():
            await apply(session, user, {name: stored},
                        Source("app", grant.client_id, purposes), now)
    return await _answer(ctx, bearer, user)


async def _answer(ctx: Context, bearer: Bearer, user: User) -> dict[str, Any]:
    """What the app may read, each value with its kind of source and time, and the
    release on record (issue 16 item 4)."""
    schema = await current_schema(ctx)
    values = readable_values(schema, user, bearer.grant, bearer.scopes, bearer.standing)
    async with ctx.db.statements() as connection:
        provenance = await store.provenance_of(connection, user.id) if values else {}
    attributes: dict[str, Any] = {}
    for name, value in values.items():
        row = provenance.get(name)
        attributes[name] = {"value": value, **({"source": row.source,
                                                "updated_at": row.updated_at} if row else {})}
    await access_log.record(ctx, access_log.release(user.id, bearer.grant.client_id,
                                                    "profile_api", values, ctx.now()))
    return {"sub": bearer.sub, "attributes": attributes}
