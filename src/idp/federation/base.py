"""The shared OpenID Connect client every upstream builds on.

A login is three steps, each a method here, in this order:

1. `start`: a fresh `state` and `nonce` (256 random bits each, requirement 3), PKCE S256
   where the upstream supports it, and the authorization URL. The returned `Transaction` is
   what the caller stores; nothing is stored here.
2. `handle_callback`: the transaction is this upstream's and still fresh, the response's
   `state` and RFC 9207 `iss` check out (requirement 6) - all before the code is sent anywhere.
   An upstream error comes back as `AuthorizationDenied` (requirement 7).
3. The code is exchanged and the ID token validated (requirement 8), giving an
   `UpstreamIdentity`.

A transaction started with `reauthenticate=True` (the account center's confirmations) asks the
upstream to authenticate the End-User again, even with a live upstream session, and its ID
token must prove it did: an `auth_time` no earlier than the transaction's start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from idp.crypto.client_keys import ClientKey
from idp.crypto.handles import new_handle
from idp.federation.authority import email_is_authoritative
from idp.federation.callback import AuthorizationCode, AuthorizationDenied, parse_callback
from idp.federation.claims import map_claims, normalise_bool, optional_str
from idp.federation.config import UpstreamConfig
from idp.federation.errors import (
    CallbackRejected,
    FederationError,
    InvalidIdToken,
    TokenRequestFailed,
    UpstreamUnavailable,
)
from idp.federation.http import JsonResponse, request_json
from idp.federation.identity import UpstreamIdentity
from idp.federation.idtoken import IdTokenRules, check_claims, check_nonce, verify_signature
from idp.federation.jwks import JwksCache
from idp.federation.metadata import MetadataCache, ProviderMetadata
from idp.federation.tokens import (
    TokenResponse,
    basic_auth,
    check_at_hash,
    granted_scopes,
    parse_token_response,
    wire_error,
)
from idp.protocol.pkce import s256

log = logging.getLogger("idp.federation")
_NOT_PROFILE = frozenset({"nonce", "at_hash", "c_hash", "auth_time", "iat", "exp", "aud", "azp"})


@dataclass(frozen=True)
class Transaction:
    """What the caller keeps between `start` and the callback (keyed by `state`)."""

    alias: str
    state: str
    redirect_uri: str
    created_at: float
    scopes: tuple[str, ...]
    nonce: str | None = None
    code_verifier: str | None = field(default=None, repr=False)
    # The ID token's auth_time must not predate `created_at` (see `check_auth_time`).
    reauthenticate: bool = False


@dataclass(frozen=True)
class AuthorizationStart:
    url: str
    transaction: Transaction


class OidcUpstream:
    """An OpenID Connect upstream: discovery, JWKS, code flow with PKCE, ID token checks."""

    uses_nonce = True
    revocation_client_auth = True  # RFC 7009 §2.1

    def __init__(self, config: UpstreamConfig, http: httpx.AsyncClient,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._http = http
        self._clock = clock
        self._metadata = MetadataCache(config, self._get, clock)
        self._jwks = JwksCache(self._get, clock)

    async def _get(self, url: str) -> JsonResponse:
        return await request_json(self._http, "GET", url)

    async def metadata(self) -> ProviderMetadata:
        return await self._metadata.get()

    # -- 1. start ---------------------------------------------------------------------------

    async def start(self, redirect_uri: str, *, scopes: tuple[str, ...] | None = None,
                    extra_params: Mapping[str, str] | None = None,
                    reauthenticate: bool = False) -> AuthorizationStart:
        metadata = await self.metadata()
        requested = scopes if scopes is not None else self.config.scopes
        transaction = Transaction(
            alias=self.config.alias, state=new_handle(32), redirect_uri=redirect_uri,
            created_at=self._clock(), scopes=requested,
            nonce=new_handle(32) if self.uses_nonce else None,
            # RFC 7636 §4.1: 43-128 unreserved characters; 48 bytes give 64.
            code_verifier=new_handle(48) if self.config.pkce else None,
            reauthenticate=reauthenticate,
        )
        params = {
            "response_type": "code", "client_id": self.config.client_id,
            "redirect_uri": redirect_uri, "scope": self.format_scopes(requested),
            "state": transaction.state,
        }
        if transaction.nonce is not None:
            params["nonce"] = transaction.nonce
        if transaction.code_verifier is not None:
            params["code_challenge"] = s256(transaction.code_verifier)
            params["code_challenge_method"] = "S256"
        params.update(self.authorization_params(requested))
        if reauthenticate:
            params.update(self.reauthentication_params())
        extra = dict(extra_params or {})
        if extra.keys() & params.keys():
            raise ValueError("extra parameters may not replace the protocol's own")
        params.update(extra)  # prompt, login_hint, access_type ... (federation.md §1.2)
        url = httpx.URL(metadata.authorization_endpoint).copy_merge_params(params)
        return AuthorizationStart(str(url), transaction)

    def format_scopes(self, scopes: tuple[str, ...]) -> str:
        return " ".join(scopes)

    def authorization_params(self, scopes: tuple[str, ...]) -> dict[str, str]:
        """Provider quirks added to every authorization request (Apple's form_post)."""
        return {}

    def reauthentication_params(self) -> dict[str, str]:
        """OIDC Core §3.1.2.1: `prompt=login` asks the upstream to authenticate the End-User
        again even when it holds a session; `max_age=0` makes `auth_time` a required claim
        (§2), which `check_auth_time` then verifies, so an upstream that ignores both fails."""
        return {"prompt": "login", "max_age": "0"}

    # -- 2. callback ------------------------------------------------------------------------

    async def handle_callback(self, params: Iterable[tuple[str, str]],
                              transaction: Transaction) -> UpstreamIdentity | AuthorizationDenied:
        """The callback's query (or Apple's POSTed form) as name-value pairs, duplicates kept."""
        try:
            self.check_transaction(transaction)
            metadata = await self.metadata()
            result = parse_callback(
                params, expected_state=transaction.state, issuer=self.config.issuer,
                iss_policy=self.config.iss_parameter,
                iss_advertised=metadata.iss_parameter_supported)
            if isinstance(result, AuthorizationDenied):
                log.info("upstream %s: authorization denied (%s)", self.config.alias,
                         result.error)
                return result
            return await self.complete(result, transaction)
        except FederationError as exc:
            log.warning("upstream %s: login refused: %s", self.config.alias, exc.reason)
            raise

    def check_transaction(self, transaction: Transaction) -> None:
        # Mix-up defence (federation.md §5 item 2): the transaction names the upstream.
        if transaction.alias != self.config.alias:
            raise CallbackRejected("the transaction belongs to another upstream")
        if self._clock() - transaction.created_at > self.config.transaction_ttl:
            raise CallbackRejected("the login transaction has expired")

    # -- 3. code exchange and ID token ------------------------------------------------------

    async def complete(self, callback: AuthorizationCode,
                       transaction: Transaction) -> UpstreamIdentity:
        if transaction.nonce is None:
            raise CallbackRejected("an OpenID Connect transaction needs a nonce")
        tokens = await self.exchange_code(callback.code, transaction)
        if tokens.id_token is None:
            raise InvalidIdToken("the token response has no id_token")
        claims = await self.validate_id_token(tokens.id_token, transaction.nonce)
        check_at_hash(claims, tokens.access_token)
        if transaction.reauthenticate:
            check_auth_time(claims, transaction.created_at, self._clock(),
                            self.config.leeway_seconds)
        return self.build_identity(claims, tokens, transaction, callback)

    async def exchange_code(self, code: str, transaction: Transaction) -> TokenResponse:
        data = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": transaction.redirect_uri}
        if transaction.code_verifier is not None:
            data["code_verifier"] = transaction.code_verifier
        return await self.token_request(data)

    async def token_request(self, data: dict[str, str]) -> TokenResponse:
        metadata = await self.metadata()
        form, headers = self.client_authentication(data)
        response = await request_json(self._http, "POST", metadata.token_endpoint, data=form,
                                      headers=headers)
        if not response.ok:
            raise TokenRequestFailed(wire_error(response.body))
        return parse_token_response(response.body)

    def client_authentication(self, data: dict[str, str]) -> tuple[dict[str, str],
                                                                   dict[str, str]]:
        secret = self.client_secret()
        if self.config.token_endpoint_auth_method == "client_secret_post":
            return {**data, "client_id": self.config.client_id, "client_secret": secret}, {}
        return data, {"Authorization": basic_auth(self.config.client_id, secret)}

    def client_secret(self) -> str:
        assert self.config.client_secret is not None  # checked by UpstreamConfig
        return self.config.client_secret.get_secret_value()

    async def validate_id_token(self, id_token: str, nonce: str, *,
                                hashed_nonce: bool = False) -> dict[str, Any]:
        metadata = await self.metadata()
        jwks_uri = metadata.jwks_uri
        if jwks_uri is None:
            raise UpstreamUnavailable("the upstream publishes no JWKS")

        async def key_for(kid: str | None, alg: str) -> ClientKey:
            return await self._jwks.key_for(jwks_uri, kid, alg)

        claims = await verify_signature(id_token, self.config.id_token_signing_algs, key_for)
        check_claims(claims, self.id_token_rules(), self._clock())
        self.check_nonce(claims, nonce, hashed=hashed_nonce)
        return claims

    async def revoke(self, token: str, token_type_hint: str | None = None) -> None:
        """RFC 7009 at the upstream (requirement 31, client part: Google `/revoke`)."""
        endpoint = (await self.metadata()).revocation_endpoint
        if endpoint is None:
            raise UpstreamUnavailable("the upstream publishes no revocation endpoint")
        data = {"token": token} | ({"token_type_hint": token_type_hint} if token_type_hint
                                   else {})
        form, headers = self.client_authentication(data) if self.revocation_client_auth \
            else (data, {})
        response = await request_json(self._http, "POST", endpoint, data=form,
                                      headers=headers, allow_empty=True)
        if not response.ok:
            raise TokenRequestFailed(wire_error(response.body))

    def id_token_rules(self) -> IdTokenRules:
        return IdTokenRules(
            allowed_issuers=self.config.allowed_issuers, audiences=self.config.audiences,
            algorithms=self.config.id_token_signing_algs, leeway=self.config.leeway_seconds)

    def check_nonce(self, claims: dict[str, Any], expected: str, *, hashed: bool) -> None:
        check_nonce(claims, expected, hashed=hashed)

    def build_identity(self, claims: dict[str, Any], tokens: TokenResponse,
                       transaction: Transaction, callback: AuthorizationCode) -> UpstreamIdentity:
        email = optional_str(claims.get("email"))
        verified = normalise_bool(claims.get("email_verified"))
        return UpstreamIdentity(
            alias=self.config.alias, namespace=self.config.namespace, subject=claims["sub"],
            email=email, email_verified=verified,
            email_authoritative=email_is_authoritative(
                email, verified, self.config.email_authority,
                hd=optional_str(claims.get("hd"))),
            claims=map_claims(claims, self.config.claim_mappings),
            raw={k: v for k, v in claims.items() if k not in _NOT_PROFILE},
            granted_scopes=granted_scopes(tokens.scope, transaction.scopes),
            refresh_token=tokens.refresh_token,
        )


def check_auth_time(claims: dict[str, Any], started_at: float, now: float, leeway: int) -> None:
    """OIDC Core §3.1.3.7 item 13: with `max_age` requested, `auth_time` must be present and
    recent enough. Here "recent" is "during this round trip": not before it started (less the
    ID-token leeway). An upstream that reused an older session instead of asking again, or an
    ID token from an earlier login, is refused."""
    auth_time = claims.get("auth_time")
    if not isinstance(auth_time, int | float) or isinstance(auth_time, bool):
        raise InvalidIdToken("the ID token has no auth_time although re-authentication was "
                             "requested")
    if auth_time < started_at - leeway:
        raise InvalidIdToken("the upstream did not authenticate the End-User again")
    if auth_time > now + leeway:
        raise InvalidIdToken("the ID token's auth_time is in the future")
