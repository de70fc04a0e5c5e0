"""Pairwise subject identifiers (issue 16 item 7, OIDC Core §8.1): a client registered with
`subject_type` pairwise sees a `sub` of its sector wherever it sees a subject; two sectors
see unrelated ones, one sector the same one, the brand's own (public) apps the account id.
The sector identifier document is fetched safely and checked (OIDC Registration §5)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

from idp.services.context import Context
from idp.settings import Settings
from idp.store.models import OutboxMessage
from tests.conftest import make_settings
from tests.helpers import (
    App,
    Flow,
    fake_dns,
    get_code,
    make_app,
    make_user,
    query_of,
    redeem,
    run_cli,
    unverified_claims,
)
from tests.test_admin_api import admin_app, bearer, token_of

PUBLIC_IP = "93.184.216.34"
ONE = "https://app.partner-one.example"
TWO = "https://app.partner-two.example"
CHECKOUT = "https://app-checkout.partner-one.example/cb"  # another host of sector ONE
SECTOR_URI = f"{ONE}/sector.json"
GRANTS = ["authorization_code", "refresh_token"]
SCOPE = "openid profile offline_access"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, registration="open")


class SectorServer:
    """Partners' web servers: a document per URL, or a status."""

    def __init__(self) -> None:
        self.documents: dict[str, httpx.Response] = {}
        self.requests: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = f"https://{request.headers['host']}{request.url.path}"
        self.requests.append(url)
        return self.documents.get(url, httpx.Response(404))

    def serve(self, url: str, document: Any) -> None:
        self.documents[url] = httpx.Response(200, json=document)


@pytest.fixture
def sectors(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> SectorServer:
    server = SectorServer()
    ctx.http_transport = httpx.MockTransport(server)
    return server


@pytest.fixture
async def alice(ctx: Context) -> str:
    return await make_user(ctx, name="Alice")


async def pairwise_app(ctx: Context, name: str, redirect_uri: str, **kwargs: Any) -> App:
    return await make_app(ctx, name=name, redirect_uri=redirect_uri, grant_types=GRANTS,
                          scopes=["openid", "profile", "email", "offline_access"],
                          subject_type="pairwise", **kwargs)


async def subjects_seen(client: httpx.AsyncClient, app: App, api: App) -> set[str]:
    """Every `sub` the app is shown: ID token, access token, UserInfo, introspection of the
    access and the refresh token, and the ID token of a refresh."""
    flow = Flow(app)
    tokens = (await redeem(client, flow, await get_code(client, flow, scope=SCOPE))).json()
    seen = {unverified_claims(tokens["id_token"])["sub"],
            unverified_claims(tokens["access_token"])["sub"]}
    info = await client.get("/userinfo", headers=bearer(tokens["access_token"]))
    assert info.status_code == 200, info.text
    seen.add(info.json()["sub"])
    for token, holder in ((tokens["access_token"], api), (tokens["refresh_token"], app)):
        body = (await client.post("/introspect", data={"token": token},
                                  headers=holder.basic())).json()
        assert body["active"] is True
        seen.add(body["sub"])
    renewed = (await client.post("/token", headers=app.basic(), data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})).json()
    seen |= {unverified_claims(renewed["id_token"])["sub"],
             unverified_claims(renewed["access_token"])["sub"]}
    return seen


async def test_sectors_see_their_own_sub_and_brand_apps_the_account_id(
        client: httpx.AsyncClient, ctx: Context, alice: str, sectors: SectorServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, PUBLIC_IP)
    sectors.serve(SECTOR_URI, [CHECKOUT, f"{ONE}/other"])
    one = await pairwise_app(ctx, "Partner one", f"{ONE}/cb")
    checkout = await pairwise_app(ctx, "Partner one checkout", CHECKOUT,
                                  sector_identifier_uri=SECTOR_URI)
    two = await pairwise_app(ctx, "Partner two", f"{TWO}/cb")
    own = await make_app(ctx, name="Brand shop", grant_types=GRANTS,
                         scopes=["openid", "profile", "offline_access"])
    api = await make_app(ctx, name="API", grant_types=["client_credentials"],
                         scopes=["orders:read"])
    assert sectors.requests == [SECTOR_URI]
    seen = {app.client_id: await subjects_seen(client, app, api)
            for app in (one, checkout, two, own)}
    # One `sub` per app wherever it looks.
    assert all(len(subs) == 1 for subs in seen.values()), seen
    sub = {client_id: subs.pop() for client_id, subs in seen.items()}
    assert sub[own.client_id] == alice
    assert sub[one.client_id] == sub[checkout.client_id]  # the same sector
    assert len({sub[one.client_id], sub[two.client_id], alice}) == 3
    assert len(sub[one.client_id]) == 43  # base64url of an HMAC-SHA256
    # Another account has other pairwise subs in the same sector.
    await make_user(ctx, "bob@example.com")
    client.cookies.clear()
    flow = Flow(one)
    code = await get_code(client, flow, "bob@example.com", scope=SCOPE)
    bob = unverified_claims((await redeem(client, flow, code)).json()["id_token"])["sub"]
    assert bob not in (sub[one.client_id], alice)


async def test_an_id_token_hint_with_a_pairwise_sub_works_at_logout_and_authorize(
        client: httpx.AsyncClient, ctx: Context, alice: str) -> None:
    one = await pairwise_app(ctx, "Partner one", f"{ONE}/cb",
                             post_logout_redirect_uris=[f"{ONE}/bye"],
                             backchannel_logout_uri=f"{ONE}/logout",
                             event_uri=f"{ONE}/events")
    flow = Flow(one)
    tokens = (await redeem(client, flow, await get_code(client, flow))).json()
    hint = tokens["id_token"]
    pairwise_sub = unverified_claims(hint)["sub"]
    assert pairwise_sub != alice
    # Authorization: the hint, or a `sub` claims request, names the signed-in account.
    silent = await client.get("/authorize", params=Flow(one).params(
        prompt="none", id_token_hint=hint))
    assert "code" in query_of(silent.headers["location"]), silent.headers["location"]
    by_claims = await client.get("/authorize", params=Flow(one).params(
        prompt="none", claims=json.dumps({"id_token": {"sub": {"value": pairwise_sub}}})))
    assert "code" in query_of(by_claims.headers["location"])
    # The account id itself names nobody in this sector.
    public = await client.get("/authorize", params=Flow(one).params(
        prompt="none", claims=json.dumps({"id_token": {"sub": {"value": alice}}})))
    assert query_of(public.headers["location"])["error"] == "login_required"
    # RP-initiated logout with the hint: no confirmation, back to the app.
    response = await client.get("/logout", params={
        "id_token_hint": hint, "post_logout_redirect_uri": f"{ONE}/bye", "state": "s1"})
    assert response.status_code == 303
    assert response.headers["location"] == f"{ONE}/bye?state=s1"
    async with ctx.db.transaction(read_only=True) as session:
        sent = list(await session.scalars(select(OutboxMessage).where(
            OutboxMessage.client_id == one.client_id)))
    assert [(m.kind, m.payload["claims"]["sub"]) for m in sent] == [
        ("backchannel_logout", pairwise_sub)]


async def test_events_name_the_pairwise_sub(client: httpx.AsyncClient, ctx: Context,
                                            alice: str) -> None:
    one = await pairwise_app(ctx, "Partner one", f"{ONE}/cb", event_uri=f"{ONE}/events")
    flow = Flow(one)
    sub = unverified_claims((await redeem(client, flow, await get_code(client, flow))).json()[
        "id_token"])["sub"]
    ops = await admin_app(ctx, ["admin:read", "admin:write"])
    put = await client.put(f"/admin/v1/users/{alice}/privacy-choices", headers=bearer(
        await token_of(client, ops)), json={"do_not_sell_or_share": True,
                                            "limit_sensitive_use": True})
    assert put.status_code == 200
    async with ctx.db.transaction(read_only=True) as session:
        sent = list(await session.scalars(select(OutboxMessage).where(
            OutboxMessage.client_id == one.client_id)))
    assert [m.payload["claims"]["sub_id"]["sub"] for m in sent] == [sub]


async def register(client: httpx.AsyncClient, **metadata: Any) -> httpx.Response:
    return await client.post("/register", json={
        "client_name": "Partner", "redirect_uris": [CHECKOUT], "subject_type": "pairwise",
        "grant_types": GRANTS, **metadata})


async def test_dynamic_registration_checks_the_sector_document(
        client: httpx.AsyncClient, ctx: Context, sectors: SectorServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, PUBLIC_IP)
    sectors.serve(SECTOR_URI, [CHECKOUT])
    registered = await register(client, sector_identifier_uri=SECTOR_URI)
    assert registered.status_code == 201, registered.text
    body = registered.json()
    assert (body["subject_type"], body["sector_identifier_uri"]) == ("pairwise", SECTOR_URI)
    token = bearer(body["registration_access_token"])
    uri = urlsplit(body["registration_client_uri"]).path
    assert (await client.get(uri, headers=token)).json()["subject_type"] == "pairwise"
    # RFC 7592 replace: a redirect URI the document does not list is refused.
    update = {k: v for k, v in body.items() if k not in (
        "client_secret", "client_secret_expires_at", "registration_access_token",
        "registration_client_uri", "client_id_issued_at")}
    refused = await client.put(uri, headers=token, json={
        **update, "redirect_uris": [CHECKOUT, f"{ONE}/new"]})
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "invalid_client_metadata",
        "error_description": f"redirect URI {ONE}/new is not in the sector_identifier_uri "
                             "document"}
    public = await client.put(uri, headers=token, json={**update, "subject_type": "public"})
    assert public.json()["error"] == "invalid_client_metadata"
    assert public.json()["error_description"].startswith("subject_type cannot be changed")
    sectors.serve(SECTOR_URI, [CHECKOUT, f"{ONE}/new"])
    accepted = await client.put(uri, headers=token, json={
        **update, "redirect_uris": [CHECKOUT, f"{ONE}/new"]})
    assert accepted.status_code == 200, accepted.text
    # Without a registration access token nothing is fetched for the caller.
    before = len(sectors.requests)
    assert (await client.put(uri, json=update)).status_code == 401
    assert len(sectors.requests) == before


FAILURES: list[tuple[dict[str, Any], httpx.Response | None, str]] = [
    ({"sector_identifier_uri": SECTOR_URI}, httpx.Response(404),
     "sector_identifier_uri could not be fetched: status 404"),
    ({"sector_identifier_uri": SECTOR_URI}, httpx.Response(302, headers={
        "location": "https://elsewhere.example/"}),
     "sector_identifier_uri could not be fetched: redirects are not followed (status 302)"),
    ({"sector_identifier_uri": SECTOR_URI}, httpx.Response(200, content=b"<html>"),
     "the sector_identifier_uri document is not JSON"),
    ({"sector_identifier_uri": SECTOR_URI}, httpx.Response(200, json={"uris": [CHECKOUT]}),
     "the sector_identifier_uri document must be a JSON array of redirect URIs"),
    ({"sector_identifier_uri": SECTOR_URI}, httpx.Response(200, json=[f"{ONE}/cb"]),
     f"redirect URI {CHECKOUT} is not in the sector_identifier_uri document"),
    ({"sector_identifier_uri": SECTOR_URI}, httpx.Response(200, content=b"[" * 300_000),
     "sector_identifier_uri could not be fetched: the body exceeds 262144 bytes"),
    ({"sector_identifier_uri": "http://app.partner-one.example/sector.json"}, None,
     "sector_identifier_uri must use https"),
    ({"sector_identifier_uri": "https://user@app.partner-one.example/s.json"}, None,
     "sector_identifier_uri needs a host, and no user information or fragment"),
    ({"redirect_uris": [CHECKOUT, f"{TWO}/cb"]}, None,
     "a pairwise client whose redirect URIs are not all on one host must register a "
     "sector_identifier_uri"),
    ({"subject_type": "anonymous"}, None, "subject_type must be public or pairwise"),
]


@pytest.mark.parametrize(("metadata", "answer", "description"), FAILURES)
async def test_a_bad_sector_is_invalid_client_metadata(
        client: httpx.AsyncClient, ctx: Context, sectors: SectorServer,
        monkeypatch: pytest.MonkeyPatch, metadata: dict[str, Any],
        answer: httpx.Response | None, description: str) -> None:
    fake_dns(monkeypatch, PUBLIC_IP)
    if answer is not None:
        sectors.documents[SECTOR_URI] = answer
    response = await register(client, **metadata)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_client_metadata",
                               "error_description": description}
    assert sectors.requests == ([SECTOR_URI] if answer is not None else [])


async def test_a_sector_document_on_a_private_address_is_never_fetched(
        client: httpx.AsyncClient, ctx: Context, sectors: SectorServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    looked_up = fake_dns(monkeypatch, "10.0.0.7")
    sectors.serve(SECTOR_URI, [CHECKOUT])
    response = await register(client, sector_identifier_uri=SECTOR_URI)
    assert response.json() == {
        "error": "invalid_client_metadata",
        "error_description": "sector_identifier_uri could not be fetched: "
                             "app.partner-one.example resolves to a non-public address"}
    assert looked_up == ["app.partner-one.example"] and sectors.requests == []


async def test_the_admin_api_and_the_cli_register_pairwise_clients(
        client: httpx.AsyncClient, ctx: Context, sectors: SectorServer,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    fake_dns(monkeypatch, PUBLIC_IP)
    ops = bearer(await token_of(client, await admin_app(ctx, ["admin:read", "admin:write"])))
    new = {"name": "Partner", "redirect_uris": [CHECKOUT], "subject_type": "pairwise",
           "sector_identifier_uri": SECTOR_URI}
    missing = await client.post("/admin/v1/clients", json=new, headers=ops)
    assert missing.status_code == 400
    assert missing.json() == {"error": "invalid_request", "error_description":
                              "sector_identifier_uri could not be fetched: status 404"}
    sectors.serve(SECTOR_URI, [CHECKOUT])
    created = await client.post("/admin/v1/clients", json=new, headers=ops)
    assert created.status_code == 201, created.text
    assert (created.json()["subject_type"], created.json()["sector_identifier_uri"]) == (
        "pairwise", SECTOR_URI)
    path = f"/admin/v1/clients/{created.json()['client_id']}"
    changed = await client.patch(path, json={"subject_type": "public"}, headers=ops)
    assert changed.status_code == 400
    assert changed.json()["error_description"].startswith("subject_type cannot be changed")
    moved = await client.patch(path, json={"sector_identifier_uri": f"{TWO}/sector.json"},
                               headers=ops)
    assert moved.status_code == 400
    assert moved.json()["error_description"].startswith(
        "the sector identifier (the host of sector_identifier_uri")
    assert (await client.get(path, headers=ops)).json()["sector_identifier_uri"] == SECTOR_URI
    code, out, err = await run_cli(ctx, monkeypatch, capsys, "clients", "create", "--name",
                                   "Partner two", "--redirect-uri", f"{TWO}/cb",
                                   "--redirect-uri", f"{ONE}/cb", "--subject-type",
                                   "pairwise", "--json")
    assert code == 2 and "must register a sector_identifier_uri" in err
    code, out, err = await run_cli(ctx, monkeypatch, capsys, "clients", "create", "--name",
                                   "Partner two", "--redirect-uri", f"{TWO}/cb",
                                   "--subject-type", "pairwise", "--json")
    assert code == 0, err
    assert json.loads(out)["subject_type"] == "pairwise"
