"""Facebook deauthorize and data deletion as brand apps and customers see them (federation.md
§3.5, §9 requirements 27, 29, 30): a deauthorized identity comes back to its account, a deletion
removes the identity and what it imported, and the apps are told. The Facebook fixtures come
from tests/upstreams.py, the browser steps from tests/flows.py."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from idp.notifications.outbox import SECURITY_EVENT
from idp.services.context import Context
from idp.services.signin import security_events
from idp.services.upstream.identities import REVOKED
from idp.services.upstream.tokens import UpstreamToken, seal
from idp.store.models import Identity, OutboxMessage, Picture, User
from tests.fakes.facebook import FakeFacebook
from tests.flows import continue_with_facebook, signed_in
from tests.helpers import make_app, query_of, redeem
from tests.helpers import unverified_claims as claims
from tests.upstreams import FACEBOOK_APP_ID

CREDENTIAL_CHANGE = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
DEAUTHORIZE = "/federation/facebook/deauthorize"
DELETION = "/federation/facebook/deletion"


async def sign_in(browser: httpx.AsyncClient, ctx: Context) -> tuple[Any, str]:
    shop = await make_app(ctx, event_uri="https://app.example/events")
    flow, done = await continue_with_facebook(browser, shop)
    assert done.status_code == 303, done.text
    tokens = (await redeem(browser, flow, query_of(done.headers["location"])["code"])).json()
    return shop, claims(tokens["id_token"])["sub"]


async def the_identity(ctx: Context) -> Identity | None:
    async with ctx.db.transaction() as session:
        return (await session.scalars(select(Identity))).one_or_none()


async def change_types(ctx: Context) -> list[str]:
    async with ctx.db.transaction() as session:
        rows = await session.scalars(select(OutboxMessage).where(
            OutboxMessage.kind == SECURITY_EVENT))
        return [r.payload["claims"]["events"][CREDENTIAL_CHANGE]["change_type"] for r in rows]


async def test_deauthorized_identity_returns_to_its_account(
        browser: httpx.AsyncClient, ctx: Context, facebook: FakeFacebook) -> None:
    """Requirements 29 and 27: deauthorize keeps the identity as revoked without its stored
    token, ends its sessions, and tells the app (change_type `revoke`); the same ASID signing
    in again lands in the same account rather than a new one or a password prompt."""
    shop, sub = await sign_in(browser, ctx)
    async with ctx.db.transaction() as session:
        identity = (await session.scalars(select(Identity))).one()
        identity.refresh_token_encrypted, identity.refresh_token_digest = seal(
            ctx, UpstreamToken("EAAB-facebook-token", "access_token"))
    response = await browser.post(DEAUTHORIZE, data={
        "signed_request": facebook.signed_request(FACEBOOK_APP_ID, "fay")})
    assert response.status_code == 200
    identity = await the_identity(ctx)
    assert identity is not None and identity.status == REVOKED
    assert identity.refresh_token_encrypted is None and identity.refresh_token_digest is None
    assert not await signed_in(browser, shop)
    assert await change_types(ctx) == ["revoke"]
    # Deauthorized twice: the apps are not told twice.
    await browser.post(DEAUTHORIZE, data={
        "signed_request": facebook.signed_request(FACEBOOK_APP_ID, "fay")})
    assert await change_types(ctx) == ["revoke"]
    browser.cookies.clear()
    _, sub_again = await sign_in(browser, ctx)
    assert sub_again == sub
    identity = await the_identity(ctx)
    assert identity is not None and identity.status == "active"


async def test_data_deletion_erases_what_the_identity_imported(
        browser: httpx.AsyncClient, ctx: Context, facebook: FakeFacebook) -> None:
    """Requirement 30: the identity and the data it imported go: its profile, the attributes
    of the account's profile that still hold the imported values, and the pictures copied
    from Facebook; what the customer set themselves and other sources' pictures stay. The app
    is told (change_type `delete`); the account, left with no way in, is deactivated."""
    shop, sub = await sign_in(browser, ctx)
    now = ctx.now()
    async with ctx.db.transaction() as session:
        identity = (await session.scalars(select(Identity))).one()
        identity.profile = {
            "name": {"value": "Fay Book", "source": "facebook", "at": now},
            "locale": {"value": "en_US", "source": "facebook", "at": now},
            "picture": {"value": "https://idp.test/pictures/p1", "source": "facebook",
                        "at": now}}
        user = await session.get(User, sub)
        assert user is not None
        user.profile = {"name": "Fay Book", "locale": "fr_FR", "nickname": "fay",
                        "picture": "https://idp.test/pictures/p1"}
        session.add_all([
            Picture(id="p1", user_id=sub, content_type="image/png", data=b"\x89PNG",
                    source="facebook", created_at=now),
            Picture(id="p2", user_id=sub, content_type="image/png", data=b"\x89PNG",
                    source="google", created_at=now)])
    response = await browser.post(DELETION, data={
        "signed_request": facebook.signed_request(FACEBOOK_APP_ID, "fay", deletion=True)})
    assert response.status_code == 200
    assert await the_identity(ctx) is None
    async with ctx.db.transaction() as session:
        user = await session.get(User, sub)
        pictures = list(await session.scalars(select(Picture.id)))
        kinds = [e.kind for e in await security_events.events_of_user(session, sub)]
    assert user is not None
    # The locale was changed by the customer since: it is theirs now.
    assert user.profile == {"locale": "fr_FR", "nickname": "fay"}
    assert pictures == ["p2"]
    # Facebook's unverified address was the account's only one: it came from Facebook.
    assert user.email is None
    assert user.disabled_at is not None and security_events.ACCOUNT_DISABLED in kinds
    assert await change_types(ctx) == ["delete"]
    assert not await signed_in(browser, shop)
