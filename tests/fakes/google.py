"""A fake Google (federation.md §8 "Google fake"): discovery, JWKS, authorize with the 2026
`iss` behaviour, token endpoint with PKCE and client authentication, userinfo, revoke, RISC."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote_plus, urlencode

import httpx

from tests.fakes.common import (
    Clock,
    FakeServer,
    Recorded,
    SigningKeys,
    at_hash,
    json_response,
    redirect,
    s256,
)

ISSUER = "https://accounts.google.com"
RISC_ISSUER = "https://accounts.google.com/"  # §1.7: with a trailing slash
# §1.2: the prompt values Google accepts; anything else (`login` included) is an error page.
GOOGLE_PROMPTS = frozenset({"none", "consent", "select_account"})
# Google answers with the legacy URL names of the email and profile scopes.
SCOPE_URLS = {"email": "https://www.googleapis.com/auth/userinfo.email",
              "profile": "https://www.googleapis.com/auth/userinfo.profile"}


def as_granted(scope: str) -> str:
    return " ".join(SCOPE_URLS.get(s, s) for s in scope.split())


@dataclass
class GoogleUser:
    sub: str
    email: str | None
    email_verified: bool = True
    hd: str | None = None
    name: str = "Test User"
    given_name: str = "Test"
    family_name: str = "User"
    picture: str = "https://lh3.googleusercontent.com/a/fake"


def scenario_users() -> dict[str, GoogleUser]:
    """The §8 scenario users."""
    return {
        "gmail": GoogleUser("104441000000000000001", "alice@gmail.com", name="Alice Gmail"),
        "workspace": GoogleUser("104441000000000000002", "bob@startup.example",
                                hd="startup.example", name="Bob Workspace"),
        "consumer": GoogleUser("104441000000000000003", "carol@example.org", name="Carol"),
        "unverified": GoogleUser("104441000000000000004", "dave@example.net",
                                 email_verified=False),
        # Same email and hd as "workspace", after the domain was bought again: new sub.
        "reregistered": GoogleUser("104441000000000000099", "bob@startup.example",
                                   hd="startup.example"),
    }


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    user: GoogleUser
    scope: str
    nonce: str | None
    challenge: str | None
    challenge_method: str | None
    offline: bool
    expires_at: float
    auth_time: int
    used: bool = False


@dataclass
class _Grant:
    """What one code exchange gave. Google revokes a grant whole: revoking its access token
    revokes its refresh token too, and the other way round."""

    access_tokens: dict[str, float]  # token -> expiry
    refresh_token: str | None
    revoked: bool = False

    def live(self, token: str, now: float) -> bool:
        if self.revoked:
            return False
        return token == self.refresh_token or now < self.access_tokens.get(token, now)


ACCESS_TOKEN_TTL = 3599
# What https://oauth2.googleapis.com/revoke answers for an expired, revoked or unknown token
# (it does not follow RFC 7009 §2.2's 200 for invalid tokens).
TOKEN_EXPIRED_OR_REVOKED = {"error": "invalid_token",
                            "error_description": "Token expired or revoked"}

IssMode = Literal["absent", "correct", "wrong", "duplicate", "empty"]


@dataclass
class FakeGoogle(FakeServer):
    clock: Clock = field(default_factory=Clock)
    base: str = "https://google.fake"
    issuer: str = ISSUER
    clients: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    users: dict[str, GoogleUser] = field(default_factory=scenario_users)
    # Toggles a test flips.
    login_user: str = "gmail"
    deny: bool = False
    callback_iss: IssMode = "absent"  # §1.3: Google now appends iss without advertising it
    advertise_iss: bool = False
    id_token_iss: str = ISSUER
    jwks_available: bool = True
    jwks_max_age: int = 3600
    granted_scope: str | None = None  # None: what was asked
    claims_hook: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    signer: Callable[[dict[str, Any]], str] | None = None  # replaces the RS256 signature
    # The browser's Google session: a user first seen was signed in this long ago, and keeps
    # that auth_time until `max_age` (or `prompt=login`, where accepted) makes them sign in
    # again. `ignore_reauth`: a misbehaving upstream that never asks again.
    session_age: float = 3600.0
    ignore_reauth: bool = False
    prompt_values: frozenset[str] = GOOGLE_PROMPTS  # a generic OP also accepts "login"

    def __post_init__(self) -> None:
        FakeServer.__init__(self, self.base)
        self.keys = SigningKeys()
        self.codes: dict[str, _Code] = {}
        self.revoked: set[str] = set()  # tokens whose revocation Google accepted
        self.grants: dict[str, _Grant] = {}  # every token issued -> its grant
        self.signed_in_at: dict[str, float] = {}  # user key -> last authentication
        self.route("GET", "/.well-known/openid-configuration", self._discovery)
        self.route("GET", "/.well-known/risc-configuration", self._risc_configuration)
        self.route("GET", "/oauth2/v3/certs", self._jwks)
        self.route("GET", "/o/oauth2/v2/auth", self._authorize)
        self.route("POST", "/token", self._token)
        self.route("POST", "/revoke", self._revoke)

    def register(self, client_id: str, secret: str, redirect_uris: list[str]) -> None:
        self.clients[client_id] = (secret, redirect_uris)

    @property
    def discovery_url(self) -> str:
        return self.url("/.well-known/openid-configuration")

    def _discovery(self, request: httpx.Request, entry: Recorded, _: Any) -> httpx.Response:
        document: dict[str, Any] = {
            "issuer": self.issuer,
            "authorization_endpoint": self.url("/o/oauth2/v2/auth"),
            "token_endpoint": self.url("/token"),
            "userinfo_endpoint": self.url("/v1/userinfo"),
            "revocation_endpoint": self.url("/revoke"),
            "jwks_uri": self.url("/oauth2/v3/certs"),
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_post",
                                                      "client_secret_basic"],
            "code_challenge_methods_supported": ["plain", "S256"],
        }
        if self.advertise_iss:
            document["authorization_response_iss_parameter_supported"] = True
        return json_response(document)

    def _risc_configuration(self, request: httpx.Request, entry: Recorded,
                            _: Any) -> httpx.Response:
        return json_response({"issuer": RISC_ISSUER, "jwks_uri": self.url("/oauth2/v3/certs")})

    def _jwks(self, request: httpx.Request, entry: Recorded, _: Any) -> httpx.Response:
        if not self.jwks_available:
            return json_response({"error": "backend_error"}, 503)
        return json_response(self.keys.jwks(), headers={
            "Cache-Control": f"public, max-age={self.jwks_max_age}, must-revalidate"})

    def _authorize(self, request: httpx.Request, entry: Recorded, _: Any) -> httpx.Response:
        p = entry.params
        client = self.clients.get(p.get("client_id", ""))
        if client is None or p.get("redirect_uri") not in client[1]:
            return httpx.Response(400, text="Error 400: redirect_uri_mismatch")
        if p.get("response_type") != "code" or "openid" not in p.get("scope", "").split():
            return httpx.Response(400, text="Error 400: invalid_request")
        prompts = p.get("prompt", "").split()
        if not set(prompts) <= self.prompt_values:
            return httpx.Response(400, text="Error 400: invalid_request Invalid parameter "
                                            f"value for prompt: Invalid prompt: {p['prompt']}")
        if not p.get("max_age", "0").isdigit():
            return httpx.Response(400, text="Error 400: invalid_request")
        answer: list[tuple[str, str]] = [("state", p.get("state", ""))]
        if self.deny:
            answer.insert(0, ("error", "access_denied"))
        else:
            code = secrets.token_urlsafe(24)
            self.issued.append(code)
            self.codes[code] = _Code(
                p["client_id"], p["redirect_uri"], self.users[self.login_user], p["scope"],
                p.get("nonce"), p.get("code_challenge"), p.get("code_challenge_method"),
                p.get("access_type") == "offline", self.clock() + 600,
                self._authenticate("login" in prompts, p.get("max_age")))
            answer = [("code", code), *answer, ("scope", as_granted(p["scope"])),
                      ("authuser", "0"),
                      ("prompt", "none")]
        answer += {"absent": [], "correct": [("iss", ISSUER)],
                   "wrong": [("iss", "https://evil.example")], "empty": [("iss", "")],
                   "duplicate": [("iss", ISSUER), ("iss", ISSUER)]}[self.callback_iss]
        return redirect(f"{p['redirect_uri']}?{urlencode(answer)}")

    def _authenticate(self, login: bool, max_age: str | None) -> int:
        """OIDC Core §3.1.2.1: the existing session's auth_time, unless `prompt=login` or an
        elapsed `max_age` has the user sign in again now."""
        now = self.clock()
        since = self.signed_in_at.setdefault(self.login_user, now - self.session_age)
        again = login or (max_age is not None and now - since >= int(max_age))
        if again and not self.ignore_reauth:
            self.signed_in_at[self.login_user] = since = now
        return int(since)

    def _client(self, request: httpx.Request, form: dict[str, str]) -> str | None:
        auth = request.headers.get("authorization", "")
        if auth.startswith("Basic "):
            raw = base64.b64decode(auth[6:]).decode()
            client_id, _, secret = raw.partition(":")
            client_id, secret = unquote_plus(client_id), unquote_plus(secret)
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        client = self.clients.get(client_id)
        return client_id if client is not None and secrets.compare_digest(client[0], secret) \
            else None

    def _token(self, request: httpx.Request, entry: Recorded, _: Any) -> httpx.Response:
        form = entry.form
        client_id = self._client(request, form)
        if client_id is None:
            return json_response({"error": "invalid_client"}, 401)
        if form.get("grant_type") != "authorization_code":
            return json_response({"error": "unsupported_grant_type"}, 400)
        code = self.codes.get(form.get("code", ""))
        if code is None or code.used or code.client_id != client_id \
                or self.clock() > code.expires_at:
            return json_response({"error": "invalid_grant"}, 400)
        code.used = True
        if form.get("redirect_uri") != code.redirect_uri:
            return json_response({"error": "redirect_uri_mismatch"}, 400)
        if code.challenge is not None and (
                code.challenge_method != "S256"
                or s256(form.get("code_verifier", "")) != code.challenge):
            return json_response({"error": "invalid_grant",
                                  "error_description": "Invalid code verifier."}, 400)
        access_token, refresh_token = self.grant(offline=code.offline)
        body: dict[str, Any] = {
            "access_token": access_token, "expires_in": ACCESS_TOKEN_TTL, "token_type": "Bearer",
            "scope": as_granted(self.granted_scope or code.scope),
            "id_token": self.id_token(code.user, client_id, code.nonce, access_token,
                                      auth_time=code.auth_time),
        }
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        self.issued += [v for k, v in body.items() if k.endswith("token")]
        return json_response(body)

    def grant(self, *, offline: bool) -> tuple[str, str | None]:
        """A new grant's access token (valid ACCESS_TOKEN_TTL) and, with offline access, its
        refresh token: what a code exchange gives, or a test that needs live tokens."""
        access_token = "ya29." + secrets.token_urlsafe(32)
        refresh_token = "1//" + secrets.token_urlsafe(32) if offline else None
        grant = _Grant({access_token: self.clock() + ACCESS_TOKEN_TTL}, refresh_token)
        for token in (access_token, refresh_token):
            if token is not None:
                self.grants[token] = grant
        return access_token, refresh_token

    def withdraw(self, token: str) -> None:
        """The user removes our app in their Google Account: the token's grant ends."""
        self.grants[token].revoked = True

    def grant_live(self, token: str) -> bool:
        """Whether the grant the token belongs to still holds (not revoked)."""
        grant = self.grants.get(token)
        return grant is not None and not grant.revoked

    def _revoke(self, request: httpx.Request, entry: Recorded, _: Any) -> httpx.Response:
        token = entry.form.get("token", "")
        grant = self.grants.get(token)
        if grant is None or not grant.live(token, self.clock()):
            # An expired access token cannot revoke its grant: the grant stays.
            return json_response(TOKEN_EXPIRED_OR_REVOKED, 400)
        grant.revoked = True
        self.revoked.add(token)
        return json_response({})

    def id_token(self, user: GoogleUser, client_id: str, nonce: str | None,
                 access_token: str | None = None, *, auth_time: int | None = None) -> str:
        now = int(self.clock())
        claims: dict[str, Any] = {
            "iss": self.id_token_iss, "azp": client_id, "aud": client_id, "sub": user.sub,
            "email_verified": user.email_verified, "iat": now, "exp": now + 3600,
            "name": user.name, "given_name": user.given_name, "family_name": user.family_name,
            "picture": user.picture,
        }
        if user.email is not None:
            claims["email"] = user.email
        if user.hd is not None:
            claims["hd"] = user.hd
        if nonce is not None:
            claims["nonce"] = nonce
        if access_token is not None:
            claims["at_hash"] = at_hash(access_token)
        if auth_time is not None:  # Google's "session age claims" setting is on
            claims["auth_time"] = auth_time
        if self.claims_hook is not None:
            claims = self.claims_hook(claims)
        return self.signer(claims) if self.signer is not None else self.keys.sign(claims)

    def risc_event(self, event_type: str, sub: str, aud: str, *,
                   reason: str | None = None) -> str:
        """A Security Event Token as Google's RISC push delivery sends it (§1.7)."""
        event: dict[str, Any] = {"subject": {"subject_type": "iss-sub", "iss": ISSUER,
                                             "sub": sub}}
        if reason is not None:
            event["reason"] = reason
        return self._security_event_token(event_type, event, aud)

    def risc_token_revoked(self, token: str, aud: str, *,
                           alg: Literal["prefix", "hash_base64_sha512_sha512"]) -> str:
        """A `token-revoked` SET (§1.7): its subject is one refresh token, identified by its
        first 16 characters (`prefix`) or by base64 SHA-512(SHA-512(token))."""
        if alg == "prefix":
            identifier = token[:16]
        else:
            once = hashlib.sha512(token.encode()).digest()
            identifier = base64.b64encode(hashlib.sha512(once).digest()).decode()
        event = {"subject": {"subject_type": "oauth_token", "token_type": "refresh_token",
                             "token_identifier_alg": alg, "token": identifier}}
        return self._security_event_token("oauth/event-type/token-revoked", event, aud)

    def _security_event_token(self, event_type: str, event: dict[str, Any], aud: str) -> str:
        claims = {"iss": RISC_ISSUER, "aud": aud, "iat": int(self.clock()),
                  "jti": secrets.token_hex(16),
                  "events": {f"https://schemas.openid.net/secevent/{event_type}": event}}
        return self.keys.sign(claims, header={"typ": "secevent+jwt"})
