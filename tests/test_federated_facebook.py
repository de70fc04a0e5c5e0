"""Sign in with Facebook (classic code flow, debug_token, /me with appsecret_proof) through our
login page, end to end against the Facebook fake. Facebook's email is stored unverified and is
never used to link or take over an account (federation.md §3.4, §9 requirement 22)."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

from idp.services.context import Context
from idp.store import users as user_store
from idp.store.models import Identity, User
from tests.conftest import ISSUER
from tests.fakes.facebook import FakeFacebook
from tests.flows import continue_with_facebook, facebook_user, signed_in
from tests.helpers import (
    PASSWORD,
    Flow,
    approve,
    make_app,
    make_user,
    query_of,
    redeem,
    unverified_account_signed_in,
    walk,
)
from tests.helpers import (
    unverified_claims as claims,
)
from tests.upstreams import FACEBOOK_APP_ID


async def test_facebook_sign_in_creates_an_account_with_an_unverified_email(
        browser: httpx.AsyncClient, ctx: Context, facebook: FakeFacebook) -> None:
    """End to end with Facebook: requirements 12 (debug_token, appsecret_proof), 14 (namespace
    facebook:{app id}, subject the ASID) and 22 (the email is stored unverified)."""
    shop = await make_app(ctx)
    flow, done = await continue_with_facebook(browser, shop)
    assert done.status_code == 303, done.text
    tokens = (await redeem(browser, flow, query_of(done.headers["location"])["code"])).json()
    sub = claims(tokens["id_token"])["sub"]
    person = facebook.users["fay"]
    info = (await browser.get("/userinfo", headers={
        "Authorization": f"Bearer {tokens['access_token']}"})).json()
    assert info["email"] == person.email and info["email_verified"] is False
    assert info["name"] == person.name
    async with ctx.db.transaction() as session:
        identity = (await session.scalars(select(Identity))).one()
        user = await session.get(User, sub)
    assert identity.namespace == f"facebook:{FACEBOOK_APP_ID}"
    assert identity.subject == facebook.asid(person, FACEBOOK_APP_ID) and identity.user_id == sub
    assert identity.email_verified is False
    assert user is not None and user.email_verified is False
    me = next(e for e in facebook.log.entries if e.path.endswith("/me"))
    assert "appsecret_proof" in me.params
    assert any(e.path.endswith("/debug_token") for e in facebook.log.entries)
    # The same Facebook user lands in the same account next time.
    browser.cookies.clear()
    flow2, again = await continue_with_facebook(browser, shop)
    tokens2 = (await redeem(browser, flow2, query_of(again.headers["location"])["code"])).json()
    assert claims(tokens2["id_token"])["sub"] == sub


async def test_facebook_sign_in_reaches_a_second_app_with_consent_only(
        browser: httpx.AsyncClient, ctx: Context, facebook: FakeFacebook) -> None:
    """End to end (issue 4, done-when): after a Facebook sign-in in one app, a second app
    signs the same customer in with nothing but its consent page, and Facebook is not asked
    again."""
    shop = await make_app(ctx)
    flow, done = await continue_with_facebook(browser, shop)
    sub = claims((await redeem(browser, flow, query_of(done.headers["location"])["code"]))
                 .json()["id_token"])["sub"]
    dialogs = [e for e in facebook.log.entries if e.path.endswith("/dialog/oauth")]
    magazine = await make_app(ctx, name="Magazine", redirect_uri="https://app.example/mag")
    flow2 = Flow(magazine)
    page = await walk(browser, await browser.get("/authorize", params=flow2.params()))
    assert urlsplit(str(page.url)).path.endswith("/consent")
    finished = await approve(browser, page)
    tokens = (await redeem(browser, flow2, query_of(finished.headers["location"])["code"])
              ).json()
    assert claims(tokens["id_token"])["sub"] == sub
    assert claims(tokens["id_token"])["aud"] == magazine.client_id
    assert [e for e in facebook.log.entries if e.path.endswith("/dialog/oauth")] == dialogs


async def test_facebook_email_matching_a_verified_account_is_not_linked(
        browser: httpx.AsyncClient, ctx: Context, facebook: FakeFacebook) -> None:
    """Requirement 22: a Facebook email equal to an existing account's is not trusted: no
    session for that account, no link, and its password keeps working."""
    facebook.login_user = "unconfirmed"  # una@gmail.com
    existing = await make_user(ctx, email="una@gmail.com")
    shop = await make_app(ctx)
    _, page = await continue_with_facebook(browser, shop)
    assert page.status_code == 200
    assert not browser.cookies.get("__Host-idp_session")
    async with ctx.db.transaction() as session:
        assert (await session.scalars(select(Identity))).first() is None
        user = await session.get(User, existing)
    assert user is not None and user.password_hash is not None and user.email_verified


async def test_a_password_less_account_is_pointed_to_its_own_sign_in_not_a_password(
        browser: httpx.AsyncClient, ctx: Context, facebook: FakeFacebook) -> None:
    """Requirement 19 without a password to prove with: the customer is told to sign in the
    way they did before and connect Facebook from the account page (no dead-end password
    prompt), nothing is linked, and which provider the account uses is not revealed."""
    facebook.login_user = "unconfirmed"  # una@gmail.com
    existing = await make_user(ctx, email="una@gmail.com")
    async with ctx.db.transaction() as session:
        user = await session.get(User, existing)
        assert user is not None
        user.password_hash = None  # as an account made by a Google sign-in
    _, page = await continue_with_facebook(browser, await make_app(ctx))
    assert page.status_code == 200
    assert "Sign in the way you did before" in page.text
    assert "connect your Facebook account under Sign-in methods" in page.text
    assert 'name="link"' not in page.text and "Google" not in page.text.split("<main")[-1]
    assert not browser.cookies.get("__Host-idp_session")
    async with ctx.db.transaction() as session:
        assert (await session.scalars(select(Identity))).first() is None


async def test_facebook_email_never_strips_an_unverified_account(
        browser: httpx.AsyncClient, ctx: Context, facebook: FakeFacebook, new_browser) -> None:  # type: ignore[no-untyped-def]
    """Requirement 22 against requirement 23: only an upstream that proves the address may
    remove a never-verified local account's password; Facebook does not prove it."""
    facebook.login_user = "unconfirmed"
    shop = await make_app(ctx)
    owner = new_browser()
    await unverified_account_signed_in(ctx, owner, shop, "una@gmail.com", PASSWORD)
    assert owner.cookies.get("__Host-idp_session")
    _, result = await continue_with_facebook(browser, shop)
    assert result.status_code == 200
    assert not browser.cookies.get("__Host-idp_session")
    async with ctx.db.transaction() as session:
        user = await user_store.find_by_email(session, "una@gmail.com")
        assert (await session.scalars(select(Identity))).first() is None
    assert user is not None and user.password_hash is not None and not user.email_verified
    # The owner's session survived: a new authorization needs no sign-in.
    again = await walk(owner, await owner.get("/authorize", params=Flow(shop).params()))
    assert not urlsplit(str(again.url)).path.endswith("/login")


# Deauthorize and data-deletion callbacks (federation.md §3.5, §9 requirements 29, 30).


async def identities(ctx: Context) -> int:
    async with ctx.db.transaction() as session:
        return len(list(await session.scalars(select(Identity))))


async def test_deauthorize_unlinks_and_ends_the_sessions(
        browser: httpx.AsyncClient, ctx: Context, facebook: FakeFacebook) -> None:
    """Requirement 29: a verified signed_request unlinks the ASID's identity and ends the
    sessions derived from it (200); a bad signature or algorithm gets 400 and changes
    nothing."""
    shop = await facebook_user(browser, ctx)
    forged = facebook.signed_request(FACEBOOK_APP_ID, "fay", secret="not-the-app-secret")
    bad_alg = facebook.signed_request(FACEBOOK_APP_ID, "fay", algorithm="HMAC-SHA1")
    for value in (forged, bad_alg, "garbage"):
        refused = await browser.post("/federation/facebook/deauthorize",
                                     data={"signed_request": value})
        assert refused.status_code == 400
    assert (await browser.post("/federation/facebook/deauthorize")).status_code == 400
    assert await identities(ctx) == 1 and await signed_in(browser, shop)
    response = await browser.post("/federation/facebook/deauthorize", data={
        "signed_request": facebook.signed_request(FACEBOOK_APP_ID, "fay")})
    assert response.status_code == 200
    # Unlinked: kept as revoked, so the same ASID coming back returns to the same account
    # (tests/test_upstream_revocation_facebook.py).
    async with ctx.db.transaction() as session:
        assert (await session.scalars(select(Identity))).one().status == "revoked"
    assert not await signed_in(browser, shop)
    # Again, or for someone we never saw: still 200.
    again = await browser.post("/federation/facebook/deauthorize", data={
        "signed_request": facebook.signed_request(FACEBOOK_APP_ID, "fay")})
    assert again.status_code == 200


async def test_data_deletion_returns_a_status_page_that_leaks_nothing(
        browser: httpx.AsyncClient, ctx: Context, facebook: FakeFacebook, new_browser,  # type: ignore[no-untyped-def]
        caplog: pytest.LogCaptureFixture) -> None:
    """Requirement 30: verified like deauthorize; answers {"url", "confirmation_code"}; the
    status page shows the job's state without authentication and no customer data; requirement
    13: the confirmation code and signed_request stay out of the logs."""
    import logging

    caplog.set_level(logging.INFO)
    await facebook_user(browser, ctx)
    signed = facebook.signed_request(FACEBOOK_APP_ID, "fay", deletion=True)
    response = await browser.post("/federation/facebook/deletion",
                                  data={"signed_request": signed})
    assert response.status_code == 200
    receipt = response.json()
    assert set(receipt) == {"url", "confirmation_code"}
    code = receipt["confirmation_code"]
    assert receipt["url"] == f"{ISSUER}/federation/facebook/deletion/{code}"
    assert await identities(ctx) == 0
    anonymous = new_browser()
    status = await anonymous.get(urlsplit(receipt["url"]).path)
    assert status.status_code == 200 and "completed" in status.text
    person = facebook.users["fay"]
    for secret in (person.name, person.first_name, str(person.email),
                   facebook.asid(person, FACEBOOK_APP_ID)):
        assert secret not in status.text
    assert (await anonymous.get("/federation/facebook/deletion/unknown-code")).status_code == 404
    # A request for someone we do not know gets the same kind of answer (nothing to leak).
    other = await browser.post("/federation/facebook/deletion", data={
        "signed_request": facebook.signed_request(FACEBOOK_APP_ID, "phone_only", deletion=True)})
    assert other.status_code == 200 and other.json()["confirmation_code"] != code
    forged = facebook.signed_request(FACEBOOK_APP_ID, "fay", deletion=True, secret="wrong")
    assert (await browser.post("/federation/facebook/deletion",
                               data={"signed_request": forged})).status_code == 400
    # Our own logs (the test's httpx client logs the URLs it requests; that is not us).
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("idp"))
    assert "/federation/facebook/deletion" in logged
    assert code not in logged and signed not in logged and signed.split(".")[1] not in logged
