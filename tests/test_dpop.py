"""DPoP (RFC 9449): proofs at the token endpoint bind what is issued to the client's key;
UserInfo accepts a bound token only with a fresh proof of that key, once; server nonces;
refresh tokens of public clients bound to the key; clients held to DPoP. Proofs are made
with joserfc directly, as a client would make them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import warnings
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey
from sqlalchemy import event, func, select

from idp.services import maintenance
from idp.services.accounts import admin
from idp.services.context import Context
from idp.settings import Settings
from idp.store.models import DpopProof
from tests.conftest import ISSUER, FakeClock
from tests.helpers import App, Flow, follow_to_page, get_code, make_app, make_user, run_cli, served
from tests.test_par import code_from

TOKEN_URL, USERINFO_URL = f"{ISSUER}/token", f"{ISSUER}/userinfo"
ALGS = 'algs="ES256 RS256 EdDSA"'
_KEYS: dict[str, Callable[[], ECKey | RSAKey | OKPKey]] = {
    "ES256": lambda: ECKey.generate_key("P-256", private=True),
    "RS256": lambda: RSAKey.generate_key(2048, private=True),
    "EdDSA": lambda: OKPKey.generate_key("Ed25519", private=True)}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Holder:
    """A client's DPoP key pair, making proofs as RFC 9449 §4.2 says."""

    def __init__(self, clock: FakeClock, alg: str = "ES256") -> None:
        self.clock, self.alg, self.key = clock, alg, _KEYS[alg]()

    @property
    def jkt(self) -> str:
        return self.key.thumbprint()

    def claims(self, method: str, url: str, access_token: str | None, nonce: str | None,
               **changes: Any) -> dict[str, Any]:
        claims: dict[str, Any] = {"jti": secrets.token_urlsafe(12), "htm": method, "htu": url,
                                  "iat": int(self.clock.value)}
        if access_token is not None:
            claims["ath"] = b64(hashlib.sha256(access_token.encode()).digest())
        if nonce is not None:
            claims["nonce"] = nonce
        claims.update(changes)
        return {name: value for name, value in claims.items() if value is not None}

    def proof(self, method: str = "POST", url: str = TOKEN_URL, *,
              access_token: str | None = None, nonce: str | None = None,
              header: dict[str, Any] | None = None, signer: Any = None, **changes: Any) -> str:
        protected = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.key.as_dict(private=False),
                     **(header or {})}
        protected = {name: value for name, value in protected.items() if value is not None}
        with warnings.catch_warnings():
            # RFC 9864 renames EdDSA; RFC 9449 clients still send it.
            warnings.simplefilter("ignore", SecurityWarning)
            return jwt.encode(protected, self.claims(method, url, access_token, nonce, **changes),
                              signer or self.key, algorithms=[protected["alg"]])


def unsigned(holder: Holder) -> str:
    """alg none: what RFC 9449 §11.6 forbids."""
    header = {"typ": "dpop+jwt", "alg": "none", "jwk": holder.key.as_dict(private=False)}
    claims = holder.claims("POST", TOKEN_URL, None, None)
    return (f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}.")


def hmac_signed(holder: Holder) -> str:
    secret = OctKey.generate_key(256)
    header = {"typ": "dpop+jwt", "alg": "HS256", "jwk": holder.key.as_dict(private=False)}
    return jwt.encode(header, holder.claims("POST", TOKEN_URL, None, None), secret,
                      algorithms=["HS256"])


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
    return decoded


def assert_token_error(response: httpx.Response, error: str, description: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json() == {"error": error, "error_description": description}
    assert response.headers["cache-control"] == "no-store"


def assert_challenge(response: httpx.Response, error: str, description: str) -> None:
    """RFC 9449 §7.1: 401 with a DPoP challenge naming the error and the algorithms."""
    assert response.status_code == 401, response.text
    assert response.json() == {"error": error, "error_description": description}
    assert response.headers["www-authenticate"] == (
        f'DPoP realm="idp", error="{error}", error_description="{description}", {ALGS}')


@pytest.fixture
def holder(clock: FakeClock) -> Holder:
    return Holder(clock)


@pytest.fixture
async def machine(ctx: Context) -> App:
    """A confidential client of its own (client_credentials), which may also introspect."""
    return await make_app(ctx, name="Backend", grant_types=["client_credentials"],
                          scopes=["orders:read"])


@pytest.fixture
async def shop(ctx: Context) -> App:
    """A public client (a mobile app): PKCE, refresh tokens."""
    await make_user(ctx)
    return await make_app(ctx, client_type="public",
                          grant_types=["authorization_code", "refresh_token"],
                          scopes=["openid", "profile", "email", "offline_access"])


async def machine_token(client: httpx.AsyncClient, machine: App, *proofs: str
                        ) -> httpx.Response:
    return await client.post("/token", data={"grant_type": "client_credentials"},
                             headers=[*machine.basic().items(), *(("DPoP", p) for p in proofs)])


async def shop_tokens(client: httpx.AsyncClient, shop: App, holder: Holder) -> dict[str, Any]:
    flow = Flow(shop)
    code = await get_code(client, flow, scope="openid profile offline_access")
    response = await client.post("/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": shop.redirect_uri,
        "code_verifier": flow.verifier, "client_id": shop.client_id},
        headers={"DPoP": holder.proof()})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def refresh(client: httpx.AsyncClient, app: App, token: str, *proofs: str
                  ) -> httpx.Response:
    return await client.post("/token", data={
        "grant_type": "refresh_token", "refresh_token": token, "client_id": app.client_id},
        headers=[("DPoP", p) for p in proofs])


async def userinfo(client: httpx.AsyncClient, token: str, proof: str | None,
                   scheme: str = "DPoP") -> httpx.Response:
    headers = {"Authorization": f"{scheme} {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    return await client.get("/userinfo", headers=headers)


# --- discovery and issuance ---------------------------------------------------------------


async def test_discovery_names_the_proof_algorithms(client: httpx.AsyncClient) -> None:
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        metadata = (await client.get(path)).json()
        assert metadata["dpop_signing_alg_values_supported"] == ["ES256", "RS256", "EdDSA"]


@pytest.mark.parametrize("alg", ["ES256", "RS256", "EdDSA"])
async def test_a_proof_binds_the_access_token_to_its_key(
        client: httpx.AsyncClient, machine: App, clock: FakeClock, alg: str) -> None:
    holder = Holder(clock, alg)
    response = await machine_token(client, machine, holder.proof())
    assert response.status_code == 200, response.text
    body = response.json()
    # RFC 9449 §5.1, §6.1.
    assert body["token_type"] == "DPoP"
    assert claims_of(body["access_token"])["cnf"] == {"jkt": holder.jkt}
    # §6.2: introspection shows the binding for the resource server to check.
    answer = (await client.post("/introspect", data={"token": body["access_token"]},
                                headers=machine.basic())).json()
    assert answer["active"] is True
    assert answer["token_type"] == "DPoP" and answer["cnf"] == {"jkt": holder.jkt}


async def test_without_a_proof_nothing_changes(client: httpx.AsyncClient, machine: App) -> None:
    body = (await machine_token(client, machine)).json()
    assert body["token_type"] == "Bearer" and "cnf" not in claims_of(body["access_token"])
    answer = (await client.post("/introspect", data={"token": body["access_token"]},
                                headers=machine.basic())).json()
    assert answer["token_type"] == "Bearer" and "cnf" not in answer


async def test_the_iat_window_and_a_query_in_htu(client: httpx.AsyncClient, machine: App,
                                                 holder: Holder) -> None:
    # §11.1: 60 s old, 5 s ahead are still fine (IDP_DPOP_PROOF_MAX_AGE_SECONDS, _FUTURE_);
    # §4.3 item 9: query and fragment aside; scheme and host case-insensitive.
    for proof in (holder.proof(iat=int(holder.clock.value) - 60),
                  holder.proof(iat=int(holder.clock.value) + 5),
                  holder.proof(url="HTTPS://IDP.test:443/token?x=1#f")):
        assert (await machine_token(client, machine, proof)).status_code == 200


# --- proofs the token endpoint refuses ----------------------------------------------------


def _bad_proofs(holder: Holder, other: Holder) -> list[tuple[str, str]]:
    now = int(holder.clock.value)
    private = holder.key.as_dict(private=True)
    return [
        ("not-a-jwt", "The DPoP proof is not a JWT"),
        ("e30.e30.e30", "The DPoP proof is not a JWT"),
        (holder.proof(header={"typ": "JWT"}), "The DPoP proof typ must be dpop+jwt"),
        (unsigned(holder), "The DPoP proof alg must be one of ES256, RS256, EdDSA"),
        (hmac_signed(holder), "The DPoP proof alg must be one of ES256, RS256, EdDSA"),
        (holder.proof(header={"jwk": private}),
         "The DPoP proof jwk must not contain a private key"),
        (holder.proof(header={"jwk": None}), "The DPoP proof has no jwk header"),
        (holder.proof(header={"jwk": Holder(holder.clock, "EdDSA").key.as_dict()}),
         "The DPoP proof jwk is not a key for ES256"),
        (holder.proof(signer=other.key), "The DPoP proof signature is invalid"),
        (holder.proof(jti=None), "The DPoP proof jti is missing or too long"),
        (holder.proof(jti="x" * 257), "The DPoP proof jti is missing or too long"),
        (holder.proof(iat="now"), "The DPoP proof iat is missing or not a number"),
        (holder.proof(htu=None), "The DPoP proof has no htu"),
        (holder.proof(method="GET"), "The DPoP proof htm does not match the request"),
        (holder.proof(url=USERINFO_URL), "The DPoP proof htu does not match the request"),
        (holder.proof(url="https://evil.test/token"),
         "The DPoP proof htu does not match the request"),
        (holder.proof(iat=now - 61), "The DPoP proof iat is too old"),
        (holder.proof(iat=now + 6), "The DPoP proof iat is in the future"),
        (holder.proof(nonce=""), "The DPoP proof nonce must be a string"),
    ]


async def test_invalid_proofs_are_refused_before_the_grant(
        client: httpx.AsyncClient, machine: App, holder: Holder, clock: FakeClock) -> None:
    for proof, description in _bad_proofs(holder, Holder(clock)):
        response = await machine_token(client, machine, proof)
        assert_token_error(response, "invalid_dpop_proof", description)
    # §4.3 item 1: one DPoP header, no more.
    two = await machine_token(client, machine, holder.proof(), holder.proof())
    assert_token_error(two, "invalid_dpop_proof", "Exactly one DPoP header is required")


async def test_the_proof_names_this_server_not_the_host_header(
        client: httpx.AsyncClient, machine: App, holder: Holder) -> None:
    # §4.3 item 9: htu is compared with the issuer's URL of the endpoint, whatever Host says.
    response = await client.post(
        "/token", data={"grant_type": "client_credentials"},
        headers={**machine.basic(), "Host": "evil.test",
                 "DPoP": holder.proof(url="https://evil.test/token")})
    assert_token_error(response, "invalid_dpop_proof",
                       "The DPoP proof htu does not match the request")


async def test_a_proof_is_accepted_once(client: httpx.AsyncClient, machine: App,
                                        holder: Holder) -> None:
    proof = holder.proof()
    assert (await machine_token(client, machine, proof)).status_code == 200
    assert_token_error(await machine_token(client, machine, proof), "invalid_dpop_proof",
                       "The DPoP proof was already used")


async def test_of_concurrent_requests_with_one_proof_exactly_one_wins(
        client: httpx.AsyncClient, machine: App, holder: Holder) -> None:
    proof = holder.proof()
    answers = await asyncio.gather(*(machine_token(client, machine, proof) for _ in range(6)))
    assert sorted(r.status_code for r in answers) == [200, 400, 400, 400, 400, 400]
    assert {r.json().get("error") for r in answers if r.status_code == 400} == {
        "invalid_dpop_proof"}


async def test_replicas_share_what_they_have_seen_and_their_nonces(
        client: httpx.AsyncClient, settings: Settings, clock: FakeClock, machine: App,
        holder: Holder) -> None:
    proof = holder.proof()
    assert (await machine_token(client, machine, proof)).status_code == 200
    async with served(settings, clock) as (other, _):
        assert_token_error(await machine_token(other, machine, proof), "invalid_dpop_proof",
                           "The DPoP proof was already used")
    async with served(settings, clock, dpop_require_nonce=True) as (first, _), \
            served(settings, clock, dpop_require_nonce=True) as (second, _):
        nonce = (await machine_token(first, machine, holder.proof())).headers["dpop-nonce"]
        response = await machine_token(second, machine, holder.proof(nonce=nonce))
        assert response.status_code == 200, response.text


async def test_a_request_without_dpop_costs_no_statement_and_one_with_a_proof_one(
        client: httpx.AsyncClient, ctx: Context, machine: App, holder: Holder,
        is_postgres: bool) -> None:
    if is_postgres:
        pytest.skip("on PostgreSQL the statement goes to asyncpg directly (store.prepared)")
    seen: list[str] = []

    def before_cursor_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "dpop_proofs" in statement:
            seen.append(statement.split()[0])

    engine = ctx.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", before_cursor_execute)
    try:
        assert (await machine_token(client, machine)).status_code == 200
        assert seen == []
        assert (await machine_token(client, machine, holder.proof())).status_code == 200
        assert seen == ["INSERT"]
    finally:
        event.remove(engine, "before_cursor_execute", before_cursor_execute)


async def test_seen_proofs_are_purged_once_out_of_the_window(
        client: httpx.AsyncClient, ctx: Context, machine: App, holder: Holder,
        clock: FakeClock) -> None:
    async def remembered() -> int:
        async with ctx.db.transaction(read_only=True) as session:
            return int(await session.scalar(select(func.count()).select_from(DpopProof)) or 0)

    assert (await machine_token(client, machine, holder.proof())).status_code == 200
    assert await remembered() == 1
    await maintenance.run_once(ctx)
    assert await remembered() == 1
    clock.advance(62)
    await maintenance.run_once(ctx)
    assert await remembered() == 0


# --- a client held to DPoP ------------------------------------------------------------------


async def test_a_client_set_to_require_dpop_gets_nothing_without_a_proof(
        client: httpx.AsyncClient, ctx: Context, machine: App, holder: Holder) -> None:
    await admin.update_client(ctx, machine.client_id, {"dpop_bound_access_tokens": True})
    # RFC 9449 §5.2: token requests without a DPoP header are refused.
    assert_token_error(await machine_token(client, machine), "invalid_dpop_proof",
                       "This client must send a DPoP proof")
    response = await machine_token(client, machine, holder.proof())
    assert response.status_code == 200 and response.json()["token_type"] == "DPoP"


# --- UserInfo -------------------------------------------------------------------------------


async def test_userinfo_answers_a_bound_token_with_a_proof_of_its_key(
        client: httpx.AsyncClient, shop: App, holder: Holder) -> None:
    tokens = await shop_tokens(client, shop, holder)
    assert tokens["token_type"] == "DPoP"
    token = tokens["access_token"]
    assert claims_of(token)["cnf"] == {"jkt": holder.jkt}
    response = await userinfo(client, token, holder.proof("GET", USERINFO_URL,
                                                          access_token=token))
    assert response.status_code == 200, response.text
    assert "sub" in response.json() and "dpop-nonce" not in response.headers
    # POST too, with its own htm.
    response = await client.post("/userinfo", headers={
        "Authorization": f"DPoP {token}",
        "DPoP": holder.proof("POST", USERINFO_URL, access_token=token)})
    assert response.status_code == 200, response.text


async def test_userinfo_refuses_a_bound_token_without_its_proof(
        client: httpx.AsyncClient, shop: App, holder: Holder, clock: FakeClock) -> None:
    token = (await shop_tokens(client, shop, holder))["access_token"]
    now = int(clock.value)

    def proof(**changes: Any) -> str:
        changes.setdefault("access_token", token)
        return holder.proof("GET", USERINFO_URL, **changes)

    # RFC 9449 §7.2: never as a bearer token, whether in the header or in a form body.
    assert_challenge(await userinfo(client, token, None, scheme="Bearer"), "invalid_token",
                     "The access token is DPoP-bound: send it with the DPoP scheme and a proof")
    form = await client.post("/userinfo", data={"access_token": token})
    assert form.status_code == 401 and form.json()["error"] == "invalid_token"
    assert form.headers["www-authenticate"].startswith('DPoP realm="idp", error="invalid_token"')
    # §7: the DPoP scheme with no proof, or a proof of another key (§7.1's example).
    assert_challenge(await userinfo(client, token, None), "invalid_dpop_proof",
                     "A DPoP proof is required with this access token")
    other = Holder(clock).proof("GET", USERINFO_URL, access_token=token)
    assert_challenge(await userinfo(client, token, other), "invalid_token",
                     "Invalid DPoP key binding")
    # §4.3: a stale or future iat, another method or URL, no or another access token hash.
    for bad, description in [
            (proof(iat=now - 61), "The DPoP proof iat is too old"),
            (proof(iat=now + 6), "The DPoP proof iat is in the future"),
            (holder.proof("POST", USERINFO_URL, access_token=token),
             "The DPoP proof htm does not match the request"),
            (proof(htu=TOKEN_URL), "The DPoP proof htu does not match the request"),
            (proof(access_token="another-token"),
             "The DPoP proof ath does not match the access token"),
            (holder.proof("GET", USERINFO_URL), "The DPoP proof ath does not match the access "
                                                "token"),
            (unsigned(holder), "The DPoP proof alg must be one of ES256, RS256, EdDSA"),
            ("garbage", "The DPoP proof is not a JWT")]:
        assert_challenge(await userinfo(client, token, bad), "invalid_dpop_proof", description)
    # §11.1: a proof is good for one request.
    once = proof()
    assert (await userinfo(client, token, once)).status_code == 200
    assert_challenge(await userinfo(client, token, once), "invalid_dpop_proof",
                     "The DPoP proof was already used")


async def test_concurrent_userinfo_requests_with_one_proof(
        client: httpx.AsyncClient, shop: App, holder: Holder) -> None:
    token = (await shop_tokens(client, shop, holder))["access_token"]
    proof = holder.proof("GET", USERINFO_URL, access_token=token)
    first, second = await asyncio.gather(userinfo(client, token, proof),
                                         userinfo(client, token, proof))
    assert sorted((first.status_code, second.status_code)) == [200, 401]
    loser = first if first.status_code == 401 else second
    assert_challenge(loser, "invalid_dpop_proof", "The DPoP proof was already used")


async def test_userinfo_refuses_a_bearer_token_under_the_dpop_scheme(
        client: httpx.AsyncClient, ctx: Context, shop: App, holder: Holder) -> None:
    flow = Flow(shop)
    code = await get_code(client, flow)
    bearer = (await client.post("/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": shop.redirect_uri,
        "code_verifier": flow.verifier, "client_id": shop.client_id})).json()
    assert bearer["token_type"] == "Bearer"
    token = bearer["access_token"]
    assert_challenge(
        await userinfo(client, token, holder.proof("GET", USERINFO_URL, access_token=token)),
        "invalid_token", "The access token is not DPoP-bound: send it with the Bearer scheme")
    assert (await userinfo(client, token, None, scheme="Bearer")).status_code == 200


async def test_other_resources_take_no_bound_token_as_bearer(
        client: httpx.AsyncClient, ctx: Context, holder: Holder) -> None:
    ops = await make_app(ctx, name="Ops", grant_types=["client_credentials"],
                         scopes=["admin:read"])
    token = (await machine_token(client, ops, holder.proof())).json()["access_token"]
    response = await client.get("/admin/v1/clients", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and response.json()["error"] == "invalid_token"
    assert response.headers["www-authenticate"].startswith('DPoP realm="idp"')


# --- refresh tokens -------------------------------------------------------------------------


async def test_a_public_clients_refresh_token_is_bound_to_its_key(
        client: httpx.AsyncClient, shop: App, holder: Holder, clock: FakeClock) -> None:
    refresh_token = (await shop_tokens(client, shop, holder))["refresh_token"]
    bound = "The refresh token is bound to a DPoP key: send a DPoP proof of that key"
    # RFC 9449 §5: without a proof, or with another key's, refused; and left for its holder.
    assert_token_error(await refresh(client, shop, refresh_token), "invalid_grant", bound)
    assert_token_error(await refresh(client, shop, refresh_token, Holder(clock).proof()),
                       "invalid_grant", bound)
    response = await refresh(client, shop, refresh_token, holder.proof())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "DPoP"
    assert claims_of(body["access_token"])["cnf"] == {"jkt": holder.jkt}
    # The rotated token is bound to the same key.
    assert_token_error(await refresh(client, shop, body["refresh_token"]), "invalid_grant", bound)
    assert (await refresh(client, shop, body["refresh_token"], holder.proof())).status_code == 200


async def test_a_confidential_clients_refresh_token_is_not_bound(
        client: httpx.AsyncClient, ctx: Context, holder: Holder) -> None:
    # RFC 9449 §5: already bound to the client's credentials.
    await make_user(ctx)
    web = await make_app(ctx, grant_types=["authorization_code", "refresh_token"],
                         scopes=["openid", "offline_access"])
    flow = Flow(web)
    code = await get_code(client, flow, scope="openid offline_access")
    tokens = (await client.post("/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": web.redirect_uri,
        "code_verifier": flow.verifier}, headers={**web.basic(), "DPoP": holder.proof()})).json()
    assert tokens["token_type"] == "DPoP"
    response = await client.post("/token", data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers=web.basic())
    assert response.status_code == 200 and response.json()["token_type"] == "Bearer"


# --- server nonces --------------------------------------------------------------------------


async def test_nonces_when_the_server_requires_them(
        settings: Settings, ctx: Context, clock: FakeClock, machine: App, holder: Holder
        ) -> None:
    async with served(settings, clock, dpop_require_nonce=True) as (http, _):
        # RFC 9449 §8: 400 use_dpop_nonce with the nonce to use.
        first = await machine_token(http, machine, holder.proof())
        assert_token_error(first, "use_dpop_nonce",
                           "A DPoP nonce is required: retry with the DPoP-Nonce")
        nonce = first.headers["dpop-nonce"]
        response = await machine_token(http, machine, holder.proof(nonce=nonce))
        assert response.status_code == 200, response.text
        # §8.2: every answer carries the nonce for the next request.
        assert response.headers["dpop-nonce"]
        forged = await machine_token(http, machine, holder.proof(nonce="A" * 32))
        assert_token_error(forged, "use_dpop_nonce",
                           "The DPoP nonce is invalid or expired: retry with the DPoP-Nonce")
        # A nonce lives two to three minutes; then a fresh one is handed out.
        clock.advance(240)
        stale = await machine_token(http, machine, holder.proof(nonce=nonce))
        assert_token_error(stale, "use_dpop_nonce",
                           "The DPoP nonce is invalid or expired: retry with the DPoP-Nonce")
        assert stale.headers["dpop-nonce"] != nonce
        # Without DPoP nothing changes.
        plain = await machine_token(http, machine)
        assert plain.status_code == 200 and "dpop-nonce" not in plain.headers


async def test_nonces_at_userinfo(settings: Settings, ctx: Context, clock: FakeClock,
                                  shop: App, holder: Holder) -> None:
    async with served(settings, clock, dpop_require_nonce=True) as (http, _):
        flow = Flow(shop)
        code = await get_code(http, flow, scope="openid profile")
        form = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": shop.redirect_uri, "code_verifier": flow.verifier,
                "client_id": shop.client_id}
        # Refused before the grant: the code is still good for the retry.
        first = await http.post("/token", data=form, headers={"DPoP": holder.proof()})
        assert first.json()["error"] == "use_dpop_nonce"
        retry = await http.post("/token", data=form, headers={
            "DPoP": holder.proof(nonce=first.headers["dpop-nonce"])})
        assert retry.status_code == 200, retry.text
        token = retry.json()["access_token"]
        # RFC 9449 §9: 401 with a DPoP challenge naming use_dpop_nonce, and the nonce.
        refused = await userinfo(http, token, holder.proof("GET", USERINFO_URL,
                                                           access_token=token))
        assert_challenge(refused, "use_dpop_nonce",
                         "A DPoP nonce is required: retry with the DPoP-Nonce")
        nonce = refused.headers["dpop-nonce"]
        response = await userinfo(http, token, holder.proof(
            "GET", USERINFO_URL, access_token=token, nonce=nonce))
        assert response.status_code == 200, response.text
        assert response.headers["dpop-nonce"]


# --- the client setting, everywhere it is set ------------------------------------------------


async def test_the_setting_through_cli_admin_api_and_registration(
        client: httpx.AsyncClient, settings: Settings, ctx: Context, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await run_cli(ctx, monkeypatch, capsys, "clients", "create", "--name",
                                 "TV", "--type", "public", "--redirect-uri",
                                 "https://tv.example/cb", "--dpop-bound-access-tokens", "--json")
    assert code == 0
    created = json.loads(out)
    assert created["dpop_bound_access_tokens"] is True
    client_id = created["client_id"]
    assert (await admin.get_client(ctx, client_id)).dpop_bound_access_tokens is True
    code, out, _ = await run_cli(ctx, monkeypatch, capsys, "clients", "update", client_id,
                                 "--no-dpop-bound-access-tokens", "--json")
    assert code == 0 and json.loads(out)["dpop_bound_access_tokens"] is False

    ops = await make_app(ctx, name="Ops", grant_types=["client_credentials"],
                         scopes=["admin:read", "admin:write"])
    token = (await machine_token(client, ops)).json()["access_token"]
    changed = await client.patch(f"/admin/v1/clients/{client_id}",
                                 json={"dpop_bound_access_tokens": True},
                                 headers={"Authorization": f"Bearer {token}"})
    assert changed.status_code == 200 and changed.json()["dpop_bound_access_tokens"] is True

    async with served(settings, clock, registration="open") as (http, _):
        response = await http.post("/register", json={
            "redirect_uris": ["https://app.example/callback"], "token_endpoint_auth_method":
            "none", "dpop_bound_access_tokens": True})
        assert response.status_code == 201, response.text
        assert response.json()["dpop_bound_access_tokens"] is True
        wrong = await http.post("/register", json={
            "redirect_uris": ["https://app.example/callback"], "dpop_bound_access_tokens": 1})
        assert wrong.status_code == 400
        assert wrong.json()["error"] == "invalid_client_metadata"


# -- Authorization codes bound to a DPoP key (RFC 9449 §10) -----------------------------------

PAR_URL = f"{ISSUER}/par"
BOUND_CODE = ("The authorization code is bound to a DPoP key (dpop_jkt): send a DPoP proof "
              "of that key")


async def redeem_code(client: httpx.AsyncClient, shop: App, flow: Flow, code: str,
                      *proofs: str) -> httpx.Response:
    return await client.post("/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": shop.redirect_uri,
        "code_verifier": flow.verifier, "client_id": shop.client_id},
        headers=[("DPoP", p) for p in proofs])


async def test_a_code_bound_with_dpop_jkt_is_redeemed_only_with_a_proof_of_that_key(
        client: httpx.AsyncClient, shop: App, holder: Holder, clock: FakeClock) -> None:
    other = Holder(clock)
    for proofs in ((), (other.proof(),)):
        flow = Flow(shop)
        code = await get_code(client, flow, dpop_jkt=holder.jkt)
        assert_token_error(await redeem_code(client, shop, flow, code, *proofs),
                           "invalid_grant", BOUND_CODE)
        # A refused redemption uses the code up, as a wrong code_verifier does.
        refused = await redeem_code(client, shop, flow, code, holder.proof())
        assert refused.json()["error"] == "invalid_grant"
    flow = Flow(shop)
    code = await get_code(client, flow, dpop_jkt=holder.jkt)
    answer = await redeem_code(client, shop, flow, code, holder.proof())
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "DPoP"
    assert claims_of(answer.json()["access_token"])["cnf"] == {"jkt": holder.jkt}
    # Without dpop_jkt a code is bound to no key: any proof, or none, redeems it.
    flow = Flow(shop)
    assert (await redeem_code(client, shop, flow, await get_code(client, flow))
            ).status_code == 200


@pytest.mark.parametrize("value", ["", "short", "x" * 44, "a" * 42 + "=", "a" * 42 + "+"])
async def test_a_malformed_dpop_jkt_is_refused_to_the_app(
        client: httpx.AsyncClient, shop: App, value: str) -> None:
    flow = Flow(shop)
    response = await client.get("/authorize", params=flow.params(dpop_jkt=value))
    assert response.status_code in (302, 303), response.text
    query = dict(httpx.URL(response.headers["location"]).params)
    assert response.headers["location"].startswith(shop.redirect_uri)
    assert query["error"] == "invalid_request" and query["state"] == flow.state
    assert "dpop_jkt" in query["error_description"]


async def test_a_pushed_request_with_a_proof_binds_its_code_to_that_key(
        client: httpx.AsyncClient, ctx: Context, holder: Holder, clock: FakeClock) -> None:
    """RFC 9449 §10.1: a DPoP header at /par binds the code as dpop_jkt would; with both,
    they must name the same key."""
    await make_user(ctx)
    web = await make_app(ctx, name="Web shop")
    flow = Flow(web)
    data = {k: v for k, v in flow.params().items() if k != "client_id"}

    async def push(*proofs: str, **extra: str) -> httpx.Response:
        return await client.post("/par", data={**data, **extra},
                                 headers=[*web.basic().items(), *(("DPoP", p) for p in proofs)])

    mismatch = await push(holder.proof("POST", PAR_URL), dpop_jkt=Holder(clock).jkt)
    assert mismatch.status_code == 400, mismatch.text
    assert mismatch.json() == {"error": "invalid_request", "error_description":
                               "dpop_jkt does not match the key of the DPoP proof"}
    # A proof made for the token endpoint is not one for /par (htu).
    wrong_target = await push(holder.proof("POST", TOKEN_URL))
    assert wrong_target.status_code == 400 and wrong_target.json()["error"] == \
        "invalid_dpop_proof"
    pushed = await push(holder.proof("POST", PAR_URL), dpop_jkt=holder.jkt)
    assert pushed.status_code == 201, pushed.text
    page = await client.get("/authorize", params={
        "client_id": web.client_id, "request_uri": pushed.json()["request_uri"]})
    code = await get_code_after(client, page)
    token_form = {"grant_type": "authorization_code", "code": code,
                  "redirect_uri": web.redirect_uri, "code_verifier": flow.verifier}
    bare = await client.post("/token", data=token_form, headers=web.basic())
    assert_token_error(bare, "invalid_grant", BOUND_CODE)

    # Once more, the proof alone (no dpop_jkt): the code is bound all the same.
    flow = Flow(web)
    data = {k: v for k, v in flow.params().items() if k != "client_id"}
    pushed = await push(holder.proof("POST", PAR_URL))
    assert pushed.status_code == 201, pushed.text
    page = await client.get("/authorize", params={
        "client_id": web.client_id, "request_uri": pushed.json()["request_uri"]})
    token_form = {"grant_type": "authorization_code", "code": await get_code_after(client, page),
                  "redirect_uri": web.redirect_uri, "code_verifier": flow.verifier}
    answer = await client.post("/token", data=token_form,
                               headers={**web.basic(), "DPoP": holder.proof()})
    assert answer.status_code == 200, answer.text
    assert claims_of(answer.json()["access_token"])["cnf"] == {"jkt": holder.jkt}


async def get_code_after(client: httpx.AsyncClient, response: httpx.Response) -> str:
    """The code at the end of a sign-in that began with `response` (from /authorize)."""
    return (await code_from(client, await follow_to_page(client, response)))["code"]
