"""refresh_token grant: rotation, reuse detection, narrowing, lifetimes (RFC 6749 §6,
RFC 9700 §4.14.2, OIDC Core §11, §12)."""

from __future__ import annotations

import asyncio

import httpx
import jwt as pyjwt
import pytest
from sqlalchemy import text

from idp.crypto.handles import digest, new_handle
from idp.services.consent import grants
from idp.services.context import Context
from idp.store import tokens as token_store
from idp.store.tokens import Successor
from tests.conftest import FakeClock
from tests.helpers import App, Flow, get_code, make_app, make_user, redeem

GRANTS = ["authorization_code", "refresh_token"]


async def refresh(http: httpx.AsyncClient, app: App, token: str, **extra: str) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": token, **extra}
    headers = app.basic() if app.client_secret else {}
    if not app.client_secret:
        data["client_id"] = app.client_id
    return await http.post("/token", data=data, headers=headers)


async def tokens_for(client: httpx.AsyncClient, ctx: Context, shop: App,
                     scope: str = "openid profile offline_access") -> dict[str, str]:
    flow = Flow(shop)
    code = await get_code(client, flow, scope=scope)
    response = await redeem(client, flow, code)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
async def shop(ctx: Context) -> App:
    await make_user(ctx)
    return await make_app(ctx, grant_types=GRANTS,
                          scopes=["openid", "profile", "email", "offline_access"])


async def test_offline_access_yields_a_refresh_token_that_rotates(
        client: httpx.AsyncClient, ctx: Context, shop: App) -> None:
    first = await tokens_for(client, ctx, shop)
    assert "refresh_token" in first
    response = await refresh(client, shop, first["refresh_token"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["scope"] == "openid profile offline_access"
    # OIDC Core §12.2: same sub, original auth_time, no nonce.
    old = pyjwt.decode(first["id_token"], options={"verify_signature": False})
    new = pyjwt.decode(second["id_token"], options={"verify_signature": False})
    assert new["sub"] == old["sub"] and new["auth_time"] == old["auth_time"]
    assert "nonce" in old and "nonce" not in new
    # The new refresh token works in turn.
    assert (await refresh(client, shop, second["refresh_token"])).status_code == 200


async def test_no_refresh_token_without_offline_access_or_long_sessions(
        client: httpx.AsyncClient, ctx: Context, shop: App) -> None:
    body = await tokens_for(client, ctx, shop, scope="openid profile")
    assert "refresh_token" not in body


async def test_long_session_clients_get_refresh_tokens_without_offline_access(
        client: httpx.AsyncClient, ctx: Context) -> None:
    await make_user(ctx, email="bob@example.com")
    app = await make_app(ctx, grant_types=GRANTS, long_sessions=True)
    flow = Flow(app)
    code = await get_code(client, flow, email="bob@example.com")
    assert "refresh_token" in (await redeem(client, flow, code)).json()


async def test_reuse_of_a_rotated_token_revokes_the_whole_grant(
        client: httpx.AsyncClient, ctx: Context, shop: App) -> None:
    first = await tokens_for(client, ctx, shop)
    second = (await refresh(client, shop, first["refresh_token"])).json()
    reused = await refresh(client, shop, first["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    # The legitimate successor is dead too, and so are the access tokens of the grant.
    successor = await refresh(client, shop, second["refresh_token"])
    assert successor.json()["error"] == "invalid_grant"
    for access in (first["access_token"], second["access_token"]):
        info = await client.get("/userinfo", headers={"Authorization": f"Bearer {access}"})
        assert info.status_code == 401


async def test_scope_may_narrow_but_not_widen(client: httpx.AsyncClient, ctx: Context,
                                              shop: App) -> None:
    first = await tokens_for(client, ctx, shop)
    narrowed = await refresh(client, shop, first["refresh_token"], scope="openid")
    assert narrowed.status_code == 200
    assert narrowed.json()["scope"] == "openid"
    claims = pyjwt.decode(narrowed.json()["access_token"], options={"verify_signature": False})
    assert claims["scope"] == "openid"
    # The rotated refresh token keeps the original scope (RFC 6749 §6).
    again = await refresh(client, shop, narrowed.json()["refresh_token"])
    assert again.json()["scope"] == "openid profile offline_access"
    widened = await refresh(client, shop, again.json()["refresh_token"], scope="openid email")
    assert widened.status_code == 400
    assert widened.json()["error"] == "invalid_scope"


async def test_bound_to_the_client(client: httpx.AsyncClient, ctx: Context, shop: App) -> None:
    first = await tokens_for(client, ctx, shop)
    other = await make_app(ctx, name="Other", grant_types=GRANTS)
    stolen = await refresh(client, other, first["refresh_token"])
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"
    # The theft attempt did not burn the owner's token.
    assert (await refresh(client, shop, first["refresh_token"])).status_code == 200


async def test_idle_and_absolute_lifetimes(client: httpx.AsyncClient, ctx: Context, shop: App,
                                           clock: FakeClock) -> None:
    idle = ctx.settings.refresh_token_idle_ttl
    first = await tokens_for(client, ctx, shop)
    clock.advance(idle - 10)
    second = await refresh(client, shop, first["refresh_token"])
    assert second.status_code == 200
    clock.advance(idle + 1)
    expired = await refresh(client, shop, second.json()["refresh_token"])
    assert expired.json()["error"] == "invalid_grant"

    # Absolute: keep refreshing inside the idle window until the chain's end.
    fresh = await tokens_for(client, ctx, shop)
    token = fresh["refresh_token"]
    elapsed = 0
    while elapsed + idle - 60 < ctx.settings.refresh_token_absolute_ttl:
        clock.advance(idle - 60)
        elapsed += idle - 60
        response = await refresh(client, shop, token)
        assert response.status_code == 200
        token = response.json()["refresh_token"]
    clock.advance(idle - 60)
    assert (await refresh(client, shop, token)).json()["error"] == "invalid_grant"


async def test_malformed_requests(client: httpx.AsyncClient, ctx: Context, shop: App) -> None:
    missing = await refresh(client, shop, "")
    assert missing.json()["error"] == "invalid_request"
    unknown = await refresh(client, shop, "not-a-real-token")
    assert unknown.json()["error"] == "invalid_grant"
    no_grant = await make_app(ctx, name="No refresh")
    refused = await refresh(client, no_grant, "whatever")
    assert refused.json()["error"] == "unauthorized_client"


async def test_twenty_parallel_refreshes_have_exactly_one_winner(
        client: httpx.AsyncClient, ctx: Context, shop: App) -> None:
    first = await tokens_for(client, ctx, shop)
    responses = await asyncio.gather(
        *(refresh(client, shop, first["refresh_token"]) for _ in range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [400] * 19
    assert {r.json()["error"] for r in responses if r.status_code == 400} == {"invalid_grant"}


async def test_refresh_storms_on_one_grant_never_deadlock(
        client: httpx.AsyncClient, ctx: Context, shop: App) -> None:
    """REL-02 under load: round after round of twenty parallel refreshes of one token on the
    same grant. Without the grant's row lock taken first, losers' reuse revocations
    deadlocked on PostgreSQL within a few rounds (a loser keeps the row lock of the token it
    re-checked while another holds other rows of the grant)."""
    # SQLite serialises writers outright; the rounds matter on PostgreSQL.
    for _ in range(30 if ctx.db.dialect == "postgresql" else 2):
        first = await tokens_for(client, ctx, shop)
        responses = await asyncio.gather(
            *(refresh(client, shop, first["refresh_token"]) for _ in range(20)),
            return_exceptions=True)
        statuses = sorted(getattr(r, "status_code", 500) for r in responses)
        assert statuses == [200] + [400] * 19, [r for r in responses
                                                if not isinstance(r, httpx.Response)][:1]


async def introspect(http: httpx.AsyncClient, app: App, token: str) -> dict[str, object]:
    response = await http.post("/introspect", data={"token": token}, headers=app.basic())
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


async def test_after_twenty_parallel_refreshes_exactly_these_tokens_are_alive(
        client: httpx.AsyncClient, new_browser, ctx: Context, shop: App) -> None:  # type: ignore[no-untyped-def]
    """RFC 9700 §4.14.2 and the README ("a rotated token presented again revokes every token
    of its grant"): of twenty parallel refreshes of one token, one wins; the first loser finds
    the token rotated, which proves it was presented twice, and revokes the grant's tokens;
    the other eighteen find it revoked. What is alive afterwards, as the apps see it: nothing
    of the grant (the winner's new tokens, the original pair, and the pair another device got
    from another code of the same grant), and everything of the customer's other grant."""
    magazine = await make_app(ctx, name="Magazine", redirect_uri="https://app.example/mag",
                              grant_types=GRANTS, scopes=["openid", "profile", "offline_access"])
    first = await tokens_for(client, ctx, shop)
    phone = await tokens_for(new_browser(), ctx, shop)
    elsewhere = await tokens_for(client, ctx, magazine)
    grant_of = {name: pyjwt.decode(tokens["access_token"], options={"verify_signature": False}
                                   )["consent"]["grant_id"]
                for name, tokens in (("first", first), ("phone", phone),
                                     ("elsewhere", elsewhere))}
    assert grant_of["first"] == grant_of["phone"] != grant_of["elsewhere"]

    responses = await asyncio.gather(
        *(refresh(client, shop, first["refresh_token"]) for _ in range(20)))
    winners = [r.json() for r in responses if r.status_code == 200]
    losers = [r for r in responses if r.status_code != 200]
    assert len(winners) == 1 and len(losers) == 19
    assert {(r.status_code, r.json()["error"]) for r in losers} == {(400, "invalid_grant")}
    assert sorted(r.json()["error_description"] for r in losers) == (
        ["The refresh token is invalid, expired or revoked"] * 18
        + ["The refresh token was already used"])
    won = winners[0]
    assert won["refresh_token"] != first["refresh_token"]

    dead = {"winner": won, "original": first, "phone": phone}
    for name, tokens in dead.items():
        for kind in ("access_token", "refresh_token"):
            assert await introspect(client, shop, tokens[kind]) == {"active": False}, (
                name, kind)
        info = await client.get("/userinfo", headers={
            "Authorization": f"Bearer {tokens['access_token']}"})
        assert info.status_code == 401, name
        refused = await refresh(client, shop, tokens["refresh_token"])
        assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant"), name
    # The customer's grant with the other app is untouched.
    assert (await introspect(client, magazine, elsewhere["access_token"]))["active"] is True
    assert (await introspect(client, magazine, elsewhere["refresh_token"]))["active"] is True
    info = await client.get("/userinfo", headers={
        "Authorization": f"Bearer {elsewhere['access_token']}"})
    assert info.status_code == 200
    assert (await refresh(client, magazine, elsewhere["refresh_token"])).status_code == 200


# PostgreSQL rotates a token every check passes in one statement (store.tokens._rotation);
# anything else goes the general path, which the tests above cover on both databases.

def _postgresql_only(ctx: Context) -> None:
    if ctx.db.dialect != "postgresql":
        pytest.skip("the single-statement rotation is PostgreSQL's")


async def _rows(ctx: Context, sql: str, **values: object) -> list[dict[str, object]]:
    async with ctx.db.engine.connect() as connection:
        result = await connection.execute(text(sql), values)
        rows = [dict(row._mapping) for row in result]
        await connection.commit()
        return rows


async def _rotate(ctx: Context, token: str, client_id: str, *, requested: list[str] | None = None,
                  now: int | None = None, jkt: str | None = None,
                  successor: Successor | None = None):  # type: ignore[no-untyped-def]
    now = ctx.now() if now is None else now
    async with ctx.db.statements() as connection:
        return await token_store.rotate_refresh_token(
            connection, digest(token), client_id, now, jkt, requested,
            successor or Successor(digest(new_handle()), now + 600, None))


async def test_the_single_statement_rotates_only_what_every_check_passes(
        client: httpx.AsyncClient, ctx: Context, shop: App) -> None:
    """Each failed check leaves the token and its grant exactly as they were: no claim, no
    successor. Then the general path answers (the tests above say what)."""
    _postgresql_only(ctx)
    first = await tokens_for(client, ctx, shop)
    token, hashed = first["refresh_token"], digest(first["refresh_token"])

    async def snapshot() -> list[dict[str, object]]:
        return await _rows(ctx, "SELECT * FROM refresh_tokens ORDER BY token_hash")

    before = await snapshot()
    other = await make_app(ctx, name="Other", grant_types=GRANTS)
    assert await _rotate(ctx, token, other.client_id) is None
    assert await _rotate(ctx, token, shop.client_id, requested=["openid", "email"]) is None
    assert await _rotate(ctx, token, shop.client_id,
                         now=ctx.now() + ctx.settings.refresh_token_idle_ttl + 1) is None
    own, other_user = before[0]["user_id"], await make_user(ctx, email="other@example.com")
    for change, undo in (
            # The grant was revoked.
            ("UPDATE grants SET revoked_at = 1", "UPDATE grants SET revoked_at = NULL"),
            # A device's: its refresh asks the app's purposes.
            ("UPDATE refresh_tokens SET device = true",
             "UPDATE refresh_tokens SET device = false"),
            # Bound to a DPoP key, and no proof of it.
            ("UPDATE refresh_tokens SET dpop_jkt = 'k'",
             "UPDATE refresh_tokens SET dpop_jkt = NULL"),
            # Not the grant's account.
            ("UPDATE refresh_tokens SET user_id = :other",
             "UPDATE refresh_tokens SET user_id = :own")):
        await _rows(ctx, change + " RETURNING 1", other=other_user, own=own)
        assert await _rotate(ctx, token, shop.client_id) is None, change
        await _rows(ctx, undo + " RETURNING 1", other=other_user, own=own)
    assert await snapshot() == before

    # Every check passes: claimed, and its successor carries the chain on.
    now = ctx.now()
    handle = new_handle()
    successor = Successor(digest(handle), now + 600, "thumbprint")
    rotated = await _rotate(ctx, token, shop.client_id, requested=["openid"], successor=successor)
    assert rotated is not None
    row, state = rotated
    assert row.token_hash == hashed and row.used_at == now
    assert state.grant.id == row.grant_id and state.user.id == row.user_id
    after = {r["token_hash"]: r for r in await snapshot()}
    old, new = after[hashed], after[successor.token_hash]
    assert old == {**before[0], "used_at": now}
    carried = ("client_id", "user_id", "grant_id", "sid", "code_hash", "scopes", "claims",
               "offline", "device", "auth_time", "amr", "acr", "expires_at")
    assert {name: new[name] for name in carried} == {name: old[name] for name in carried}
    assert (new["created_at"], new["idle_expires_at"], new["used_at"], new["revoked_at"],
            new["dpop_jkt"]) == (now, now + 600, None, None, "thumbprint")
    # The spent token is refused; its successor, bound to a key, only with that key's proof;
    # and the chain's end caps the next one's idle lifetime.
    assert await _rotate(ctx, token, shop.client_id) is None
    assert await _rotate(ctx, handle, shop.client_id) is None
    end = int(str(old["expires_at"]))
    last = Successor(digest(new_handle()), end + 99, None)
    assert await _rotate(ctx, handle, shop.client_id, jkt="thumbprint", successor=last)
    assert (await _rows(ctx, "SELECT idle_expires_at FROM refresh_tokens WHERE token_hash = :h",
                        h=last.token_hash)) == [{"idle_expires_at": end}]


async def test_a_refresh_locks_the_grant_before_its_token_and_loses_to_its_revocation(
        client: httpx.AsyncClient, ctx: Context, shop: App) -> None:
    """Locks in one order, grant first (or a refresh and a revocation deadlock), and a grant
    revoked while a refresh waited for it leaves no live successor: the refresh, queued
    behind the revocation's lock, holds no lock on its token, and once the revocation
    commits it is refused."""
    _postgresql_only(ctx)
    first = await tokens_for(client, ctx, shop)
    hashed = digest(first["refresh_token"])
    grant_id = (await _rows(ctx, "SELECT grant_id FROM refresh_tokens WHERE token_hash = :h",
                            h=hashed))[0]["grant_id"]
    async with ctx.db.engine.connect() as revoker:
        await revoker.execute(text("SELECT 1 FROM grants WHERE id = :g FOR UPDATE"),
                              {"g": grant_id})
        pending = asyncio.ensure_future(refresh(client, shop, first["refresh_token"]))
        for _ in range(200):  # until the refresh waits on the grant's lock
            waiting = await _rows(
                ctx, "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()")
            if waiting[0]["n"]:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the refresh never waited for the grant's lock")
        assert not pending.done()
        # It holds no lock on its token yet: this would wait (here, fail) otherwise.
        await revoker.execute(text("SET LOCAL lock_timeout = '1s'"))
        await revoker.execute(text(
            "SELECT 1 FROM refresh_tokens WHERE token_hash = :h FOR UPDATE NOWAIT"), {"h": hashed})
        now = ctx.now()
        await revoker.execute(text("UPDATE grants SET revoked_at = :now WHERE id = :g"),
                              {"now": now, "g": grant_id})
        await revoker.execute(text("UPDATE refresh_tokens SET revoked_at = :now"
                                   " WHERE grant_id = :g AND revoked_at IS NULL"),
                              {"now": now, "g": grant_id})
        await revoker.commit()
    response = await pending
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")
    live = await _rows(ctx, "SELECT token_hash FROM refresh_tokens WHERE grant_id = :g"
                            " AND revoked_at IS NULL", g=grant_id)
    assert live == []


async def test_a_refresh_that_passes_every_check_is_one_statement(
        client: httpx.AsyncClient, ctx: Context, shop: App,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The single statement is what a good refresh takes, with or without `scope`: the
    general path's transaction is not opened (a refresh it would refuse still opens it)."""
    _postgresql_only(ctx)
    first = await tokens_for(client, ctx, shop)
    opened: list[str] = []
    general = ctx.db.atomic

    def atomic():  # type: ignore[no-untyped-def]
        opened.append("atomic")
        return general()

    monkeypatch.setattr(ctx.db, "atomic", atomic)
    second = await refresh(client, shop, first["refresh_token"])
    third = await refresh(client, shop, second.json()["refresh_token"], scope="openid profile")
    assert (second.status_code, third.status_code, opened) == (200, 200, [])
    assert third.json()["scope"] == "openid profile"
    assert (await refresh(client, shop, first["refresh_token"])).status_code == 400
    assert opened == ["atomic"]


async def test_refreshes_racing_the_withdrawal_of_their_grant_leave_nothing_alive(
        client: httpx.AsyncClient, new_browser, ctx: Context, shop: App) -> None:  # type: ignore[no-untyped-def]
    """The customer disconnects the app (account center) while eight of its devices refresh,
    each with its own chain of the grant: every request is answered (200 or invalid_grant,
    no error), and whichever order they took, no refresh token of the grant is alive
    afterwards and no successor a refresh returned works. (That both lock the grant first
    is the test above's.)"""
    chains = [await tokens_for(new_browser(), ctx, shop) for _ in range(8)]
    grant_id = (await _rows(ctx, "SELECT grant_id FROM refresh_tokens WHERE token_hash = :h",
                            h=digest(chains[0]["refresh_token"])))[0]["grant_id"]
    user_id = (await _rows(ctx, "SELECT user_id FROM grants WHERE id = :g",
                           g=grant_id))[0]["user_id"]
    results = await asyncio.gather(
        *(refresh(client, shop, chain["refresh_token"]) for chain in chains[:4]),
        grants.withdraw(ctx, str(user_id), shop.client_id),
        *(refresh(client, shop, chain["refresh_token"]) for chain in chains[4:]),
        return_exceptions=True)
    responses = [r for r in results if isinstance(r, httpx.Response)]
    assert len(responses) == 8 and not [r for r in results if isinstance(r, BaseException)]
    assert {r.status_code for r in responses} <= {200, 400}
    assert {r.json()["error"] for r in responses if r.status_code == 400} <= {"invalid_grant"}
    live = await _rows(ctx, "SELECT token_hash FROM refresh_tokens WHERE grant_id = :g"
                            " AND revoked_at IS NULL AND used_at IS NULL", g=grant_id)
    assert live == []
    for response in responses:
        if response.status_code == 200:
            again = await refresh(client, shop, response.json()["refresh_token"])
            assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")
