"""Removing a sign-in method, at the edges: two removals at once, and what the removed
identity leaves behind (federation.md §9 requirement 24 context, security.md PRIV-08)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import select

from idp import errors
from idp.crypto.handles import new_handle
from idp.domain import SessionInfo
from idp.services.accounts.linking import remove_identity
from idp.services.context import Context
from idp.services.signin.interaction import start_session
from idp.store.models import Identity, Picture, User


async def _account(ctx: Context, *aliases: str, profile: dict[str, object] | None = None
                   ) -> tuple[str, dict[str, str]]:
    """A password-less account with one identity per alias; returns its id and identity ids."""
    now = ctx.now()
    user_id = new_handle(16)
    ids = {alias: new_handle(16) for alias in aliases}
    async with ctx.db.transaction() as session:
        session.add(User(id=user_id, email=None, email_verified=False, password_hash=None,
                         profile=profile or {}, created_at=now, updated_at=now))
        await session.flush()
        for alias, identity_id in ids.items():
            session.add(Identity(
                id=identity_id, user_id=user_id, alias=alias, namespace=f"ns:{alias}",
                subject=f"{alias}-subject", email=None, email_verified=False, profile={},
                import_choices={}, refresh_token_encrypted=None, status="active",
                created_at=now, last_login_at=now))
    return user_id, ids


async def _session(ctx: Context, user_id: str) -> SessionInfo:
    async with ctx.db.transaction() as session:
        _, sid = await start_session(ctx, session, user_id, None, amr=["fed"])
    return SessionInfo(sid=sid, user_id=user_id, auth_time=ctx.now(), amr=("fed",),
                       acr="urn:idp:acr:federated")


async def _identities(ctx: Context, user_id: str) -> list[Identity]:
    async with ctx.db.transaction() as session:
        return list(await session.scalars(select(Identity).where(Identity.user_id == user_id)))


async def test_two_removals_at_once_leave_one_way_in(ctx: Context) -> None:
    """From two browsers at the same moment, each removing a different one of the account's
    two sign-in methods: one succeeds, the other is told it is the last way in. Without the
    lock on the account both would see the other's identity and remove their own."""
    user_id, ids = await _account(ctx, "google", "facebook")
    first, second = await _session(ctx, user_id), await _session(ctx, user_id)
    outcomes = await asyncio.gather(remove_identity(ctx, first, ids["google"]),
                                    remove_identity(ctx, second, ids["facebook"]))
    assert sorted(o.outcome for o in outcomes) == ["last", "removed"]
    assert len(await _identities(ctx, user_id)) == 1


async def test_a_removed_identity_takes_what_it_imported(ctx: Context) -> None:
    """PRIV-08: the attributes the removed identity imported (and still unchanged) and the
    pictures copied from it go; what another identity provides, or the customer typed, stays."""
    user_id, ids = await _account(ctx, "google", "facebook", profile={
        "name": "Ann Google", "locale": "fr", "nickname": "typed by Ann"})
    now = ctx.now()
    async with ctx.db.transaction() as session:
        google = await session.get(Identity, ids["google"])
        facebook = await session.get(Identity, ids["facebook"])
        assert google is not None and facebook is not None
        google.profile = {"name": {"value": "Ann Google", "source": "google", "at": now},
                          "locale": {"value": "fr", "source": "google", "at": now}}
        facebook.profile = {"locale": {"value": "fr", "source": "facebook", "at": now}}
        session.add(Picture(id=new_handle(24), user_id=user_id, content_type="image/png",
                            data=b"\x89PNG\r\n\x1a\n", source="google", created_at=now))
        session.add(Picture(id=new_handle(24), user_id=user_id, content_type="image/png",
                            data=b"\x89PNG\r\n\x1a\n", source="facebook", created_at=now))
    removal = await remove_identity(ctx, await _session(ctx, user_id), ids["google"])
    assert removal.outcome == "removed"
    async with ctx.db.transaction() as session:
        user = await session.get(User, user_id)
        sources = list(await session.scalars(select(Picture.source).where(
            Picture.user_id == user_id)))
    assert user is not None
    assert user.profile == {"locale": "fr", "nickname": "typed by Ann"}
    assert sources == ["facebook"]


async def test_malformed_identity_ids_are_refused_before_the_database(
        ctx: Context, client: httpx.AsyncClient) -> None:
    """A NUL byte (which PostgreSQL refuses) or an oversized id is a 400, never a 500
    (security review: five routes answered 500 on PostgreSQL)."""
    user_id, _ = await _account(ctx, "google", "facebook")
    info = await _session(ctx, user_id)
    for bad in ("a\x00b", "x" * 65, "", "../x"):
        with pytest.raises(errors.InvalidRequest, match="No such sign-in method"):
            await remove_identity(ctx, info, bad)
    # Over HTTP, a NUL anywhere (path, query, form) is refused before any route runs.
    for response in (await client.get("/pictures/a%00b"),
                     await client.get("/account/reauth", params={"upstream": "\x00"}),
                     await client.get("/account?outcome=linked&upstream=%00")):
        assert response.status_code == 400, response.request.url
        assert response.json()["error"] == "invalid_request"
    form = await client.post("/account/login", data={"email": "a\x00@example.com",
                                                       "password": "x", "csrf_token": "t"})
    assert form.status_code == 400 and "NUL" in form.text
