"""Client registrations are held in memory at the token, introspection and revocation
endpoints and at /authorize (Settings.client_cache_seconds), and a change made elsewhere
(the CLI, another replica) still decides in time: a new secret works at once, a removed
client stops within the cache time, and an unknown client is never remembered."""

from __future__ import annotations

import httpx
from sqlalchemy import delete, update

from idp.crypto.handles import digest
from idp.services.context import Context
from idp.store.models import Client
from tests.conftest import FakeClock
from tests.helpers import App, Flow, make_app
from tests.test_admin_api import admin_app, bearer, token_of

CC = {"grant_type": "client_credentials"}


async def cc_app(ctx: Context) -> App:
    return await make_app(ctx, name="Backend", grant_types=["client_credentials"],
                          scopes=["orders:read"])


async def test_a_secret_changed_elsewhere_works_at_once_and_the_old_one_stops_after_the_ttl(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock) -> None:
    app = await cc_app(ctx)
    assert (await client.post("/token", data=CC, headers=app.basic())).status_code == 200
    # Another replica (or the CLI) gives the client a new secret.
    async with ctx.db.transaction() as session:
        await session.execute(update(Client).where(Client.client_id == app.client_id)
                              .values(secret_hash=digest("the-new-secret")))
    renewed = App(app.client_id, "the-new-secret", app.redirect_uri)
    assert (await client.post("/token", data=CC, headers=renewed.basic())).status_code == 200
    # Checking the new secret re-read the registration, so the old one is refused now.
    old = await client.post("/token", data=CC, headers=app.basic())
    assert (old.status_code, old.json()["error"]) == (401, "invalid_client")


async def test_a_removed_client_is_refused_once_the_cache_time_has_passed(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock) -> None:
    app = await cc_app(ctx)
    assert (await client.post("/token", data=CC, headers=app.basic())).status_code == 200
    async with ctx.db.transaction() as session:
        await session.execute(delete(Client).where(Client.client_id == app.client_id))
    clock.advance(ctx.settings.client_cache_seconds)
    gone = await client.post("/token", data=CC, headers=app.basic())
    assert (gone.status_code, gone.json()["error"]) == (401, "invalid_client")


async def test_an_unknown_client_is_not_remembered(client: httpx.AsyncClient,
                                                   ctx: Context) -> None:
    stranger = App("not-yet-registered", "secret", "https://app.example/cb")
    refused = await client.post("/token", data=CC, headers=stranger.basic())
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
    # Registered a moment later (by the CLI, say): the next request finds it.
    app = await cc_app(ctx)
    assert (await client.post("/token", data=CC, headers=app.basic())).status_code == 200
    for attempt in range(3):
        wrong = App(f"nobody-{attempt}", "secret", "https://app.example/cb")
        await client.post("/token", data=CC, headers=wrong.basic())
    assert ctx.clients.cached_ids() == [app.client_id]


async def test_authorize_reads_the_cache_and_a_redirect_uri_taken_off_stops_within_its_time(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock) -> None:
    """/authorize checks the redirect URI against the cached registration too: one taken off
    the client elsewhere (another replica, the CLI) is refused once the cache time has
    passed, with the error page, never a redirect to it (RFC 6749 §4.1.2.1)."""
    app = await make_app(ctx, name="Shop")
    first = await client.get("/authorize", params=Flow(app).params())
    assert first.status_code == 303 and "/interaction/" in first.headers["location"]
    async with ctx.db.transaction() as session:
        await session.execute(update(Client).where(Client.client_id == app.client_id)
                              .values(redirect_uris=["https://elsewhere.example/cb"]))
    clock.advance(ctx.settings.client_cache_seconds)
    gone = await client.get("/authorize", params=Flow(app).params())
    assert gone.status_code == 400 and "location" not in gone.headers
    assert "invalid_request" in gone.text


async def test_a_change_through_the_admin_api_decides_at_authorize_at_once(
        client: httpx.AsyncClient, ctx: Context) -> None:
    app = await make_app(ctx, name="Shop")
    assert (await client.get("/authorize", params=Flow(app).params())).status_code == 303
    ops = bearer(await token_of(client, await admin_app(ctx, ["admin:read", "admin:write"])))
    changed = await client.patch(f"/admin/v1/clients/{app.client_id}", headers=ops,
                                 json={"redirect_uris": ["https://elsewhere.example/cb"]})
    assert changed.status_code == 200, changed.text
    refused = await client.get("/authorize", params=Flow(app).params())
    assert refused.status_code == 400 and "location" not in refused.headers
    moved = App(app.client_id, app.client_secret, "https://elsewhere.example/cb")
    assert (await client.get("/authorize", params=Flow(moved).params())).status_code == 303
