"""Google identities keyed by subject, never by email (federation.md §9 requirements 16 and
17), and Google RISC `token-revoked` (requirement 28), against the Google fake. The Google
fixtures come from tests/upstreams.py, the browser steps from tests/flows.py."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

from idp.federation.config import UpstreamConfig
from idp.services.context import Context
from idp.services.signin import security_events
from idp.services.upstream.providers import save_upstream
from idp.services.upstream.tokens import UpstreamToken, seal
from idp.store.models import Identity, User
from tests.fakes.google import FakeGoogle
from tests.flows import continue_with_google, sign_in_with_google
from tests.helpers import Flow, make_app, make_user, redeem, walk
from tests.helpers import unverified_claims as claims
from tests.upstreams import GOOGLE_CLIENT_ID, GOOGLE_SECRET, RISC, SECEVENT


async def identities(ctx: Context) -> list[Identity]:
    async with ctx.db.transaction() as session:
        return list(await session.scalars(select(Identity).order_by(Identity.created_at,
                                                                    Identity.subject)))


async def google_sub_of_account(browser: httpx.AsyncClient, ctx: Context) -> str:
    shop = await make_app(ctx)
    flow, code = await sign_in_with_google(browser, shop)
    sub: str = claims((await redeem(browser, flow, code)).json()["id_token"])["sub"]
    return sub


async def test_changed_upstream_email_same_subject_same_account(
        browser: httpx.AsyncClient, ctx: Context, google: FakeGoogle) -> None:
    """Requirement 16: the fake user's email changes while the subject stays: the customer
    lands in the same account and the stored upstream email is updated."""
    first = await google_sub_of_account(browser, ctx)
    [identity] = await identities(ctx)
    assert identity.email == "alice@gmail.com"
    google.users["gmail"].email = "alice.renamed@gmail.com"
    browser.cookies.clear()
    assert await google_sub_of_account(browser, ctx) == first
    [identity] = await identities(ctx)
    assert identity.email == "alice.renamed@gmail.com"
    assert identity.subject == google.users["gmail"].sub and identity.user_id == first
    async with ctx.db.transaction() as session:
        assert len(list(await session.scalars(select(User)))) == 1


@pytest.mark.parametrize("policy", ["auto_if_authoritative", "deny"])
async def test_same_email_and_hd_with_a_new_public_id_is_not_the_account(
        browser: httpx.AsyncClient, ctx: Context, google: FakeGoogle, policy: str) -> None:
    """Requirement 17: the same address and `hd` arriving under a different Google `sub` (the
    domain was registered again) is not logged into the existing account, even under
    `auto_if_authoritative`: the policy's prompt (or deny) applies, nothing is linked, and a
    security event is recorded on the account."""
    google.login_user = "workspace"
    owner = await google_sub_of_account(browser, ctx)
    await save_upstream(ctx, UpstreamConfig.model_validate({
        "alias": "google", "type": "google", "client_id": GOOGLE_CLIENT_ID,
        "client_secret": GOOGLE_SECRET,
        "discovery_url": google.discovery_url, "linking_policy": policy}))
    google.login_user = "reregistered"
    assert google.users["reregistered"].email == google.users["workspace"].email
    browser.cookies.clear()
    shop = await make_app(ctx, name="Other", redirect_uri="https://app.example/other")
    page = await walk(browser, await browser.get("/authorize", params=Flow(shop).params()))
    answer = await continue_with_google(browser, page)
    # Back on our login page with the policy's message, not in the app.
    assert answer.status_code == 200 and 'name="password"' in answer.text
    assert "An account already uses this email address." in answer.text
    # The account was made by Google and has no password: no password prompt to link with,
    # the customer is sent to sign in the way they did before.
    assert 'name="link"' not in answer.text
    assert "Sign in the way you did before" in answer.text
    assert not browser.cookies.get("__Host-idp_session")
    assert [i.subject for i in await identities(ctx)] == [google.users["workspace"].sub]
    async with ctx.db.transaction() as session:
        events = await security_events.events_of_user(session, owner)
    changed = [e for e in events if e.kind == security_events.UPSTREAM_SUBJECT_CHANGED]
    assert len(changed) == 1 and changed[0].detail == {"alias": "google"}


async def keep_token(ctx: Context, identity_id: str, token: str) -> None:
    async with ctx.db.transaction() as session:
        identity = await session.get(Identity, identity_id)
        assert identity is not None
        identity.refresh_token_encrypted, identity.refresh_token_digest = seal(
            ctx, UpstreamToken(token, "refresh_token"))


async def other_google_identity(ctx: Context, namespace: str, token: str) -> str:
    user_id = await make_user(ctx, email="other@example.com")
    async with ctx.db.transaction() as session:
        other = Identity(id="other-identity", user_id=user_id, alias="google",
                         namespace=namespace, subject="104441000000000000777",
                         email="other@example.com", profile={}, status="active",
                         created_at=ctx.now(), last_login_at=ctx.now())
        other.refresh_token_encrypted, other.refresh_token_digest = seal(
            ctx, UpstreamToken(token, "refresh_token"))
        session.add(other)
    return other.id


async def stored(ctx: Context) -> dict[str, bool]:
    return {i.subject: i.refresh_token_encrypted is not None and
            i.refresh_token_digest is not None for i in await identities(ctx)}


async def test_token_revoked_deletes_only_the_matching_stored_token(
        browser: httpx.AsyncClient, ctx: Context, google: FakeGoogle) -> None:
    """Requirement 28, `token-revoked`: the stored Google refresh token the event names is
    deleted, matched by double SHA-512 or by its 16-character prefix; another identity's token
    and the customer's sessions stay. A token we never stored is still answered 202.
    `tokens-revoked` ends the sessions and deletes the stored token as well."""
    shop = await make_app(ctx)
    await sign_in_with_google(browser, shop)
    [mine] = await identities(ctx)
    mine_token = "1//0gmail-refresh-token-aaaaaaaaaaaaaaaaaaaa"
    other_token = "1//0other-refresh-token-bbbbbbbbbbbbbbbbbbbb"
    await keep_token(ctx, mine.id, mine_token)
    await other_google_identity(ctx, mine.namespace, other_token)
    gmail, other = google.users["gmail"].sub, "104441000000000000777"
    assert await stored(ctx) == {gmail: True, other: True}

    async def post(body: str) -> int:
        return (await browser.post(RISC, content=body, headers=SECEVENT)).status_code

    unknown = google.risc_token_revoked("1//0never-stored-token-cccccccccc", GOOGLE_CLIENT_ID,
                                        alg="hash_base64_sha512_sha512")
    assert await post(unknown) == 202
    assert await post(google.risc_token_revoked("1//0never-stored-token", GOOGLE_CLIENT_ID,
                                                alg="prefix")) == 202
    assert await stored(ctx) == {gmail: True, other: True}
    assert await post(google.risc_token_revoked(mine_token, GOOGLE_CLIENT_ID,
                                                alg="hash_base64_sha512_sha512")) == 202
    assert await stored(ctx) == {gmail: False, other: True}
    # Only the token: the Google sign-in and its sessions are untouched.
    page = await walk(browser, await browser.get("/authorize", params=Flow(shop).params()))
    assert not urlsplit(str(page.url)).path.endswith("/login")
    assert await post(google.risc_token_revoked(other_token, GOOGLE_CLIENT_ID, alg="prefix")) == 202
    assert await stored(ctx) == {gmail: False, other: False}
    # Sent to another audience, it is refused and deletes nothing.
    await keep_token(ctx, mine.id, mine_token)
    foreign = google.risc_token_revoked(mine_token, "someone-else", alg="prefix")
    assert await post(foreign) == 400
    assert await stored(ctx) == {gmail: True, other: False}
    # `tokens-revoked` ends the sessions and, as suggested, forgets the stored token too.
    assert await post(google.risc_event("oauth/event-type/tokens-revoked", gmail,
                                        GOOGLE_CLIENT_ID)) == 202
    assert await stored(ctx) == {gmail: False, other: False}
    page = await walk(browser, await browser.get("/authorize", params=Flow(shop).params()))
    assert urlsplit(str(page.url)).path.endswith("/login")
