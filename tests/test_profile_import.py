"""Profile import with consent (issue 4 item 6; federation.md §7, §9 requirements 35-38), end to
end through our login and consent pages against the Google and Facebook fakes.

Nothing an upstream offers is stored until the customer ticks "Save to my profile" on the
consent page; the boxes start unticked; the answer is kept per attribute; pictures from an
upstream whose URLs expire are copied and served from our origin."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

from idp.federation.config import UpstreamConfig
from idp.services import maintenance
from idp.services.consent import ledger
from idp.services.context import Context
from idp.services.upstream.providers import save_upstream
from idp.store.models import Identity, Interaction, Picture, User
from tests.conftest import ISSUER, FakeClock
from tests.fakes.common import FakeServer, transport
from tests.fakes.facebook import FakeFacebook, tiny_png
from tests.fakes.google import FakeGoogle
from tests.flows import press_continue, prove_account
from tests.helpers import (
    App,
    Flow,
    approve,
    csrf_token,
    fake_dns,
    get_code,
    make_app,
    make_user,
    offered_imports,
    query_of,
    redeem,
    walk,
)
from tests.helpers import unverified_claims as claims
from tests.upstreams import (
    FACEBOOK_APP_ID,
    FACEBOOK_SECRET,
    GOOGLE_CLIENT_ID,
    GOOGLE_SECRET,
    Browsers,
)

PUBLIC_IP = "93.184.216.34"


def mappings(sync: str) -> list[dict[str, str]]:
    return [{"claim": c, "attribute": c, "sync": sync}
            for c in ("name", "given_name", "family_name", "picture", "locale")]


SYNC_MODES = pytest.mark.parametrize("sync", ["import_once", "update_every_login"])


async def configure(ctx: Context, google: FakeGoogle, facebook: FakeFacebook, sync: str,
                    extra: tuple[str, ...] = ()) -> None:
    """Both upstreams again, with their claims mapped to the profile in `sync` mode."""
    await save_upstream(ctx, UpstreamConfig.model_validate({
        "alias": "google", "type": "google", "client_id": GOOGLE_CLIENT_ID,
        "client_secret": GOOGLE_SECRET, "discovery_url": google.discovery_url,
        "claim_mappings": mappings(sync)}))
    await save_upstream(ctx, UpstreamConfig.model_validate({
        "alias": "facebook", "type": "facebook", "client_id": FACEBOOK_APP_ID,
        "client_secret": FACEBOOK_SECRET,
        "authorization_endpoint": facebook.url("/v21.0/dialog/oauth"),
        "token_endpoint": facebook.url("/v21.0/oauth/access_token"),
        "graph_api_url": facebook.url("/v21.0"), "claim_mappings": mappings(sync),
        "jwks_uri": facebook.url("/.well-known/oauth/openid/jwks/")}))


def by_host_header(*servers: FakeServer) -> httpx.MockTransport:
    """The SSRF-safe fetcher connects to the address it checked and names the host in `Host`;
    this serves each fake by that header."""
    by_host = {server.host: server for server in servers}

    def handle(request: httpx.Request) -> httpx.Response:
        server = by_host.get(request.headers.get("host", "").split(":")[0])
        if server is None:
            return httpx.Response(502)
        return server.handle(request)

    return httpx.MockTransport(handle)


@pytest.fixture
async def browser(browsers: Browsers, ctx: Context, google: FakeGoogle, facebook: FakeFacebook,
                  monkeypatch: pytest.MonkeyPatch) -> httpx.AsyncClient:
    """A browser that reaches us and both fakes, with both upstreams' claims mapped."""
    ctx.upstream_transport = transport(google, facebook)
    # Pictures go through the SSRF-safe fetcher, to a public address of the fake's name.
    ctx.http_transport = by_host_header(google, facebook)
    fake_dns(monkeypatch, PUBLIC_IP)
    await configure(ctx, google, facebook, "import_once")
    return browsers(google, facebook)


async def sign_in(browser: httpx.AsyncClient, app: App, alias: str, **params: str
                  ) -> tuple[Flow, httpx.Response]:
    """From the app through our login page and the upstream; returns the page we land on."""
    browser.cookies.clear()
    flow = Flow(app)
    page = await walk(browser, await browser.get("/authorize", params=flow.params(**params)))
    assert urlsplit(str(page.url)).path.endswith("/login")
    start = await press_continue(browser, page, alias)
    assert start.status_code == 303
    return flow, await walk(browser, start)


def on_consent(page: httpx.Response) -> bool:
    return page.status_code == 200 and urlsplit(str(page.url)).path.endswith("/consent")


async def tokens_of(browser: httpx.AsyncClient, flow: Flow, done: httpx.Response
                    ) -> dict[str, Any]:
    assert done.status_code == 303, done.text
    response = await redeem(browser, flow, query_of(done.headers["location"])["code"])
    return dict(response.json())


async def userinfo(browser: httpx.AsyncClient, tokens: dict[str, Any]) -> dict[str, Any]:
    response = await browser.get("/userinfo", headers={
        "Authorization": f"Bearer {tokens['access_token']}"})
    return dict(response.json())


async def stored(ctx: Context) -> tuple[Identity, User]:
    async with ctx.db.transaction() as session:
        identity = (await session.scalars(select(Identity))).one()
        user = await session.get(User, identity.user_id)
    assert user is not None
    return identity, user


async def pictures(ctx: Context) -> list[Picture]:
    async with ctx.db.transaction() as session:
        return list(await session.scalars(select(Picture)))


ID_TOKEN_CLAIMS = json.dumps({"id_token": {"name": None, "given_name": None}})


async def test_consent_page_offers_each_attribute_unticked(
        browser: httpx.AsyncClient, ctx: Context, google: FakeGoogle) -> None:
    """Issue 4 item 6 (federation.md §7, §1.8): the consent page lists what Google offers,
    each value shown, each box unticked and labelled, the picture as an image from our origin;
    nothing is stored before the answer."""
    shop = await make_app(ctx)
    _, page = await sign_in(browser, shop, "google")
    assert on_consent(page)
    html = page.text
    assert "From your Google profile" in html
    assert offered_imports(html) == ["name", "given_name", "family_name", "picture"]
    boxes = re.findall(r'<input type="checkbox" id="import-[^"]+"[^>]*>', html)
    assert len(boxes) == 4 and not any("checked" in box for box in boxes)
    for name in ("name", "given_name", "family_name", "picture"):
        assert f'<label for="import-{name}">Save to my profile' in html
    assert "<strong>Alice Gmail</strong>" in html
    interaction = urlsplit(str(page.url)).path.split("/")[2]
    assert (f'<img src="/interaction/{interaction}/consent/picture" '
            f'alt="Your Google profile picture"') in html
    identity, user = await stored(ctx)
    assert identity.profile == {} and user.profile == {} and identity.import_choices == {}


async def test_only_allowed_attributes_are_stored_with_source_and_time(
        browser: httpx.AsyncClient, ctx: Context, google: FakeGoogle, clock: FakeClock) -> None:
    """Requirement 38 (issue 4 item 6): allow the name and picture, decline the others. Only
    the allowed ones are stored, with source and time; the declined ones appear in neither
    UserInfo nor the ID token; the consent record carries the decision and the scopes Google
    granted (its token response's `scope`)."""
    shop = await make_app(ctx)
    flow, page = await sign_in(browser, shop, "google", claims=ID_TOKEN_CLAIMS)
    tokens = await tokens_of(browser, flow, await approve(browser, page, ["name", "picture"]))
    identity, user = await stored(ctx)
    now = int(clock())
    assert identity.import_choices == {"name": True, "picture": True, "given_name": False,
                                       "family_name": False}
    assert identity.profile == {
        "name": {"value": "Alice Gmail", "source": "google", "at": now},
        # A stable Google URL is kept as a URL (requirement 37 concerns expiring ones).
        "picture": {"value": "https://lh3.googleusercontent.com/a/fake", "source": "google",
                    "at": now}}
    assert user.profile == {"name": "Alice Gmail",
                            "picture": "https://lh3.googleusercontent.com/a/fake"}
    info = await userinfo(browser, tokens)
    assert info["name"] == "Alice Gmail" and "given_name" not in info
    assert "family_name" not in info
    id_claims = claims(tokens["id_token"])
    assert id_claims["name"] == "Alice Gmail" and "given_name" not in id_claims
    async with ctx.db.transaction() as session:
        assert (await session.scalars(select(Interaction))).first() is None
        entry = (await ledger.entries_for_subject(ctx, session, user.id))[0]
    assert entry.payload is not None and entry.payload["upstream"] == {
        "alias": "google", "granted_scopes": ["email", "openid", "profile"],
        "import": {"allowed": ["name", "picture"], "declined": ["family_name", "given_name"]}}


async def test_declining_everything_still_signs_in(
        browser: httpx.AsyncClient, ctx: Context, google: FakeGoogle) -> None:
    """Issue 4 item 6: declining the import never fails the login; nothing is stored."""
    shop = await make_app(ctx)
    flow, page = await sign_in(browser, shop, "google")
    tokens = await tokens_of(browser, flow, await approve(browser, page, []))
    info = await userinfo(browser, tokens)
    assert info["email"] == "alice@gmail.com" and "name" not in info and "picture" not in info
    identity, user = await stored(ctx)
    assert identity.profile == {} and user.profile == {}
    assert set(identity.import_choices.values()) == {False}


@SYNC_MODES
async def test_sync_modes_at_later_logins(
        browser: httpx.AsyncClient, ctx: Context, google: FakeGoogle, facebook: FakeFacebook,
        sync: str) -> None:
    """Requirement 35, for `name` and `picture`, through the whole flow: at a second login with
    changed Google values an allowed attribute is updated silently with `update_every_login`
    and left alone with `import_once`; a declined one is not asked again; a new one is."""
    await configure(ctx, google, facebook, sync)
    shop = await make_app(ctx)
    flow, page = await sign_in(browser, shop, "google")
    await tokens_of(browser, flow, await approve(browser, page, ["name", "picture"]))
    person = google.users["gmail"]
    person.name, person.picture = "Alice Renamed", "https://lh3.googleusercontent.com/a/new"
    flow, done = await sign_in(browser, shop, "google")
    assert not on_consent(done)  # every offered attribute was decided
    info = await userinfo(browser, await tokens_of(browser, flow, done))
    if sync == "update_every_login":
        assert info["name"] == "Alice Renamed"
        assert info["picture"] == "https://lh3.googleusercontent.com/a/new"
    else:
        assert info["name"] == "Alice Gmail"
        assert info["picture"] == "https://lh3.googleusercontent.com/a/fake"
    identity, _ = await stored(ctx)
    assert identity.profile["name"]["value"] == info["name"]
    assert "given_name" not in identity.profile
    # A claim the customer was never asked about is asked, alone.
    google.claims_hook = lambda c: {**c, "locale": "de"}
    flow, page = await sign_in(browser, shop, "google")
    assert on_consent(page) and offered_imports(page.text) == ["locale"]
    info = await userinfo(browser, await tokens_of(
        browser, flow, await approve(browser, page, ["locale"])))
    assert info["locale"] == "de" and "given_name" not in info


@SYNC_MODES
async def test_facebook_picture_is_copied_and_served_from_our_origin(
        browser: httpx.AsyncClient, ctx: Context, facebook: FakeFacebook, clock: FakeClock,
        google: FakeGoogle, sync: str) -> None:
    """Requirement 37, Requirement 35, Requirement 38: the allowed Facebook picture is copied;
    the `picture` claim is our URL, which keeps working after the Facebook URL expired. A later
    login makes a fresh copy with `update_every_login` (the old one goes) and keeps ours with
    `import_once`. The consent record has debug_token's scopes."""
    await configure(ctx, google, facebook, sync)
    shop = await make_app(ctx)
    flow, page = await sign_in(browser, shop, "facebook")
    assert on_consent(page) and "From your Facebook profile" in page.text
    interaction = urlsplit(str(page.url)).path.split("/")[2]
    preview = await browser.get(f"/interaction/{interaction}/consent/picture")
    assert preview.status_code == 200 and preview.content == facebook.picture_bytes
    assert await pictures(ctx) == []  # a preview stores nothing
    tokens = await tokens_of(browser, flow, await approve(browser, page, ["picture"]))
    ours = (await userinfo(browser, tokens))["picture"]
    assert re.fullmatch(rf"{ISSUER}/pictures/[A-Za-z0-9_-]{{32}}", ours)
    identity, user = await stored(ctx)
    assert identity.profile["picture"]["source"] == "facebook"
    async with ctx.db.transaction() as session:
        entry = (await ledger.entries_for_subject(ctx, session, user.id))[0]
    # Requirement 38: Facebook's granted permissions, as debug_token listed them.
    assert entry.payload is not None
    assert entry.payload["upstream"]["granted_scopes"] == ["email", "public_profile"]
    served = await browser.get(ours)
    assert served.status_code == 200 and served.content == facebook.picture_bytes
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert served.headers["cache-control"] == "private, max-age=86400, immutable"
    upstream_url = facebook.picture(facebook.asid(facebook.users["fay"], FACEBOOK_APP_ID),
                                    facebook.users["fay"])["url"]
    clock.advance(facebook.picture_ttl + 1)
    expired = await browser.get(upstream_url)
    assert expired.status_code == 403 and expired.text == "URL signature expired"
    assert (await browser.get(ours)).content == facebook.picture_bytes
    # Second login with a new Facebook picture.
    facebook.picture_bytes = tiny_png((255, 0, 0))
    flow, done = await sign_in(browser, shop, "facebook")
    assert not on_consent(done)
    now_ours = (await userinfo(browser, await tokens_of(browser, flow, done)))["picture"]
    if sync == "update_every_login":
        assert now_ours != ours and (await browser.get(ours)).status_code == 404
        assert (await browser.get(now_ours)).content == tiny_png((255, 0, 0))
    else:
        assert now_ours == ours and (await browser.get(ours)).content == tiny_png()
    assert len(await pictures(ctx)) == 1


@pytest.mark.parametrize(("content", "content_type"), [
    (b"\x89PNG\r\n\x1a\n" + b"\0" * (512 * 1024), "image/png"),  # over 512 KiB
    (tiny_png(), "image/svg+xml"),  # a type we do not serve
    (b"<html><script>alert(1)</script></html>", "image/png"),  # not what it claims
    (b"GIF89a" + b"\0" * 10, "image/png"),  # magic of another type
])
async def test_unacceptable_pictures_are_skipped(
        browser: httpx.AsyncClient, ctx: Context, facebook: FakeFacebook, content: bytes,
        content_type: str) -> None:
    """Requirement 37: an oversized picture, a type we do not serve, or bytes that are not the
    image they claim are not copied; the login goes on and the URL is never stored."""
    facebook.picture_bytes, facebook.picture_type = content, content_type
    shop = await make_app(ctx)
    flow, page = await sign_in(browser, shop, "facebook")
    tokens = await tokens_of(browser, flow, await approve(browser, page, ["picture", "name"]))
    info = await userinfo(browser, tokens)
    assert info["name"] == "Fay Book" and "picture" not in info
    identity, user = await stored(ctx)
    assert "picture" not in identity.profile and "picture" not in user.profile
    assert await pictures(ctx) == []


async def test_unknown_picture_is_404(browser: httpx.AsyncClient) -> None:
    """Requirement 37: only stored copies are served."""
    for path in ("/pictures/nope", "/pictures/" + "x" * 200):
        response = await browser.get(path)
        assert response.status_code == 404 and response.content == b""


async def test_consent_without_csrf_token_is_refused(
        browser: httpx.AsyncClient, ctx: Context, google: FakeGoogle) -> None:
    """Issue 4 item 6 with RFC 6749 §10.12: an import answer without our CSRF token is refused
    and stores nothing; the question is still pending."""
    shop = await make_app(ctx)
    _, page = await sign_in(browser, shop, "google")
    path = urlsplit(str(page.url)).path
    refused = await browser.post(path, data={"decision": "allow", "import": ["name"]})
    assert refused.status_code == 403
    forged = await browser.post(path, data={"csrf_token": "forged", "import": ["name"]})
    assert forged.status_code == 403
    identity, user = await stored(ctx)
    assert identity.profile == {} and user.profile == {} and identity.import_choices == {}
    again = await browser.get(path)
    assert offered_imports(again.text) == ["name", "given_name", "family_name", "picture"]


async def test_pending_import_goes_with_the_interaction(
        browser: httpx.AsyncClient, ctx: Context, google: FakeGoogle, clock: FakeClock) -> None:
    """Issue 4 item 6: the offered values are kept nowhere but in the interaction. Deny removes
    them; so does expiry; nothing was decided, so the next login asks again."""
    shop = await make_app(ctx)
    _, page = await sign_in(browser, shop, "google")
    deny_token = page.text.split('name="csrf_token" value="')[2].split('"')[0]
    denied = await browser.post(str(page.url).replace("/consent", "/cancel"),
                                data={"csrf_token": deny_token})
    assert query_of(denied.headers["location"])["error"] == "access_denied"
    async with ctx.db.transaction() as session:
        assert (await session.scalars(select(Interaction))).first() is None
    _, page = await sign_in(browser, shop, "google")
    assert offered_imports(page.text) == ["name", "given_name", "family_name", "picture"]
    async with ctx.db.transaction() as session:
        assert (await session.scalars(select(Interaction))).one().pending_import is not None
    clock.advance(ctx.settings.interaction_ttl + 1)
    await maintenance.run_once(ctx)
    async with ctx.db.transaction() as session:
        assert (await session.scalars(select(Interaction))).first() is None
    identity, user = await stored(ctx)
    assert identity.profile == {} and user.profile == {} and identity.import_choices == {}
    assert csrf_token(page.text)  # the page had its form


async def test_link_after_proving_the_account_asks_before_importing(
        browser: httpx.AsyncClient, ctx: Context, google: FakeGoogle) -> None:
    """Issue 4 item 6 on the linking path (requirement 19): after the customer proves the
    existing account with its password, the consent page asks what to import from Google,
    although the app's consent was given before; only the allowed attribute is stored."""
    shop = await make_app(ctx)
    existing = await make_user(ctx, email="alice@gmail.com")
    await get_code(browser, Flow(shop), email="alice@gmail.com")  # the app has consent
    flow, prompt = await sign_in(browser, shop, "google")
    assert "already uses this email address" in prompt.text
    page = await prove_account(browser, prompt, "alice@gmail.com")
    assert on_consent(page) and "From your Google profile" in page.text
    assert offered_imports(page.text) == ["name", "given_name", "family_name", "picture"]
    tokens = await tokens_of(browser, flow, await approve(browser, page, ["given_name"]))
    info = await userinfo(browser, tokens)
    assert info["sub"] == existing and info["given_name"] == "Test" and "name" not in info
    identity, _ = await stored(ctx)
    assert identity.user_id == existing and set(identity.profile) == {"given_name"}
