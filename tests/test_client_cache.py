"""Client registrations are held in memory at the token, introspection and revocation
endpoints (Settings.client_cache_seconds), and a change made elsewhere (the CLI, another
replica) still decides in time: a new secret works at once, a removed client stops within
the cache time, and an unknown client is never remembered."""

from __future__ import annotations

import httpx
from sqlalchemy import delete, update

from idp.crypto.handles import digest
from idp.services.context import Context
from idp.store.models import Client
from tests.conftest import FakeClock
from tests.helpers import App, make_app

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
