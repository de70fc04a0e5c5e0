"""A fake Sign in with Apple (federation.md §8 "Apple fake"): discovery, several RSA keys,
form_post authorization with the first-authorization `user` field, a token endpoint that
verifies our ES256 client secret, revoke, string-or-bool claims, and S2S notifications."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from tests.fakes.common import (
    Clock,
    FakeServer,
    Recorded,
    SigningKeys,
    at_hash,
    json_response,
    redirect,
)

ISSUER = "https://appleid.apple.com"
MAX_SECRET_LIFETIME = 15_777_000
FORM_POST_ONLY = "response_mode must be form_post when name or email scope is requested"


@dataclass
class AppleUser:
    key: str  # stable per person; the sub is derived per team
    email: str
    first_name: str = "Ann"
    last_name: str = "Apple"
    is_private_email: bool = False


def scenario_users() -> dict[str, AppleUser]:
    return {
        "relay": AppleUser("p1", "x7k2m9q4@privaterelay.appleid.com", is_private_email=True),
        "hide_my_email": AppleUser("p2", "q8w3@private.icloud.com", is_private_email=True),
        "icloud": AppleUser("p3", "dan@icloud.com", "Dan", "Mac"),
        "shares_gmail": AppleUser("p4", "erin@gmail.com", "Erin", "Gee"),
    }


@dataclass
class AppleClient:
    team_id: str
    key_id: str
    public_key: ECKey
    redirect_uris: list[str]


@dataclass
class _Code:
    client_id: str
    redirect_uri: str | None
    user: AppleUser
    nonce: str | None
    expires_at: float
    auth_time: int  # when the user authenticated at Apple for this authorization
    used: bool = False


@dataclass
class FakeApple(FakeServer):
    clock: Clock = field(default_factory=Clock)
    base: str = "https://apple.fake"
    clients: dict[str, AppleClient] = field(default_factory=dict)
    users: dict[str, AppleUser] = field(default_factory=scenario_users)
    login_user: str = "relay"
    cancel: bool = False
    # Claim shapes a test may switch (§2.5).
    email_verified_value: Any = "true"
    is_private_email_as_string: bool = True
    nonce_supported: Any = True
    omit_nonce: bool = False
    transfer_sub: str | None = None
    real_user_status: int | None = None
    # Secrets issued before this instant are refused (Apple deems them expired or revoked).
    secret_not_before: float = 0.0
    claims_hook: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    # Apple's web flow asks for the Apple ID at every authorization (§2.3), so `auth_time` is
    # the moment of that authorization, not of the token response. `reuse_session`: an Apple
    # that took an earlier authentication of this browser instead of asking again (what a
    # re-authentication must refuse): the ID token then carries that earlier auth_time.
    reuse_session: bool = False

    def __post_init__(self) -> None:
        FakeServer.__init__(self, self.base)
        self.keys = SigningKeys(count=2)  # "several RSA keys", the newest signs
        self.codes: dict[str, _Code] = {}
        self.authorized: set[tuple[str, str]] = set()  # (team, person) past first consent
        self.refresh_tokens: dict[str, tuple[str, AppleUser]] = {}
        self.signed_in_at: dict[str, int] = {}  # user key -> last authentication at Apple
        self.route("GET", "/.well-known/openid-configuration", self._discovery)
        self.route("GET", "/auth/keys", self._jwks)
        self.route("GET", "/auth/authorize", self._authorize)
        self.route("POST", "/auth/token", self._token)
        self.route("POST", "/auth/revoke", self._revoke)

    def register(self, client_id: str, team_id: str, key_id: str, public_key: ECKey,
                 redirect_uris: list[str]) -> None:
        self.clients[client_id] = AppleClient(team_id, key_id, public_key, redirect_uris)

    @property
    def discovery_url(self) -> str:
        return self.url("/.well-known/openid-configuration")

    def sub_for(self, user: AppleUser, team_id: str) -> str:
        """Apple-like `sub`, stable per (team, person) and different across teams."""
        digest = hashlib.sha256(f"{team_id}/{user.key}".encode()).hexdigest()[:32]
        return f"001234.{digest}.1234"

    def _discovery(self, request: httpx.Request, entry: Recorded, _: Any) -> httpx.Response:
        return json_response({
            "issuer": ISSUER, "authorization_endpoint": self.url("/auth/authorize"),
            "token_endpoint": self.url("/auth/token"),
            "revocation_endpoint": self.url("/auth/revoke"), "jwks_uri": self.url("/auth/keys"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "name"],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
        })

    def _jwks(self, request: httpx.Request, entry: Recorded, _: Any) -> httpx.Response:
        return json_response(self.keys.jwks())

    def _authorize(self, request: httpx.Request, entry: Recorded, _: Any) -> httpx.Response:
        p = entry.params
        client = self.clients.get(p.get("client_id", ""))
        redirect_uri = p.get("redirect_uri", "")
        if client is None or redirect_uri not in client.redirect_uris \
                or not redirect_uri.startswith("https://"):
            return httpx.Response(400, text="invalid_client")
        if p.get("response_type") not in ("code", "code id_token"):
            return httpx.Response(400, text="unsupported_response_type")
        scopes = set(p.get("scope", "").split())
        mode = p.get("response_mode", "query")
        if scopes & {"name", "email"} and mode != "form_post":
            return httpx.Response(400, text=FORM_POST_ONLY)
        fields: list[tuple[str, str]]
        if self.cancel:
            fields = [("error", "user_cancelled_authorize"), ("state", p.get("state", ""))]
        else:
            user = self.users[self.login_user]
            code = secrets.token_urlsafe(24)
            self.issued.append(code)
            self.codes[code] = _Code(p["client_id"], redirect_uri, user, p.get("nonce"),
                                     self.clock() + 300, self.authenticate(user))
            fields = [("code", code), ("state", p.get("state", ""))]
            first = (client.team_id, user.key) not in self.authorized
            if first and "name" in scopes:
                # §2.3: `user` is a JSON string, on the first authorization only.
                fields.append(("user", json.dumps({
                    "name": {"firstName": user.first_name, "lastName": user.last_name},
                    "email": user.email})))
            self.authorized.add((client.team_id, user.key))
        if mode != "form_post":
            return redirect(f"{redirect_uri}?{urlencode(fields)}")
        inputs = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
                         for k, v in fields)
        return httpx.Response(200, html=(
            f'<html><body onload="document.forms[0].submit()"><form method="POST" '
            f'action="{escape(redirect_uri)}">{inputs}</form></body></html>'))

    def _check_secret(self, form: dict[str, str]) -> AppleClient | None:
        client = self.clients.get(form.get("client_id", ""))
        if client is None:
            return None
        try:
            token = jwt.decode(form.get("client_secret", ""), client.public_key,
                               algorithms=["ES256"])
        except (JoseError, ValueError):
            return None
        c, now = token.claims, self.clock()
        valid = (token.header.get("kid") == client.key_id and c.get("iss") == client.team_id
                 and c.get("sub") == form["client_id"] and c.get("aud") == ISSUER
                 and isinstance(c.get("exp"), int) and isinstance(c.get("iat"), int)
                 and c["exp"] > now and c["exp"] - c["iat"] <= MAX_SECRET_LIFETIME
                 and c["iat"] >= self.secret_not_before)
        return client if valid else None

    def _token(self, request: httpx.Request, entry: Recorded, _: Any) -> httpx.Response:
        form = entry.form
        client = self._check_secret(form)
        if client is None:
            return json_response({"error": "invalid_client"}, 400)
        grant = form.get("grant_type")
        if grant == "refresh_token":
            if form.get("refresh_token") not in self.refresh_tokens:
                return json_response({"error": "invalid_grant"}, 400)
            return json_response({"access_token": secrets.token_urlsafe(24),
                                  "token_type": "Bearer", "expires_in": 3600})
        if grant != "authorization_code":
            return json_response({"error": "unsupported_grant_type"}, 400)
        code = self.codes.get(form.get("code", ""))
        if code is None or code.used or code.client_id != form["client_id"] \
                or self.clock() > code.expires_at:
            return json_response({"error": "invalid_grant"}, 400)
        code.used = True
        # §2.4: redirect_uri only if one was sent at authorization, and then equal.
        if form.get("redirect_uri") != code.redirect_uri:
            return json_response({"error": "invalid_grant"}, 400)
        access_token, refresh_token = secrets.token_urlsafe(24), "r" + secrets.token_hex(24)
        self.refresh_tokens[refresh_token] = (client.team_id, code.user)
        id_token = self.id_token(code.user, form["client_id"], code.nonce, access_token,
                                 auth_time=code.auth_time)
        self.issued += [access_token, refresh_token, id_token]
        return json_response({
            "access_token": access_token, "token_type": "Bearer", "expires_in": 3600,
            "refresh_token": refresh_token, "id_token": id_token,
        })

    def _revoke(self, request: httpx.Request, entry: Recorded, _: Any) -> httpx.Response:
        if self._check_secret(entry.form) is None:
            return json_response({"error": "invalid_client"}, 400)
        found = self.refresh_tokens.pop(entry.form.get("token", ""), None)
        if found is not None:
            self.authorized.discard((found[0], found[1].key))  # next login is "first" again
        return httpx.Response(200)  # §2.8: 200 even for garbage tokens

    def authenticate(self, user: AppleUser) -> int:
        """The user proves who they are at Apple now (or, with `reuse_session`, an earlier
        authentication of this browser stands in); returns that authentication's time."""
        if not (self.reuse_session and user.key in self.signed_in_at):
            self.signed_in_at[user.key] = int(self.clock())
        return self.signed_in_at[user.key]

    def id_token(self, user: AppleUser, client_id: str, nonce: str | None,
                 access_token: str | None = None, *, auth_time: int | None = None) -> str:
        """`auth_time` defaults to the user's last authentication at Apple (now if none)."""
        now = int(self.clock())
        if auth_time is None:
            auth_time = self.signed_in_at.get(user.key, now)
        team = self.clients[client_id].team_id if client_id in self.clients else "OTHERTEAM"
        private = user.is_private_email
        claims: dict[str, Any] = {
            "iss": ISSUER, "aud": client_id, "exp": now + 600, "iat": now,
            "auth_time": auth_time,
            "sub": self.sub_for(user, team), "email": user.email,
            "email_verified": self.email_verified_value,
            "is_private_email": str(private).lower() if self.is_private_email_as_string
            else private,
        }
        if access_token is not None:
            claims["at_hash"] = at_hash(access_token)
        if nonce is not None and not self.omit_nonce:
            claims["nonce"] = nonce
        if self.nonce_supported is not None:
            claims["nonce_supported"] = self.nonce_supported
        if self.transfer_sub is not None:
            claims["transfer_sub"] = self.transfer_sub
        if self.real_user_status is not None:
            claims["real_user_status"] = self.real_user_status
        if self.claims_hook is not None:
            claims = self.claims_hook(claims)
        return self.keys.sign(claims)

    def native_id_token(self, user: str, bundle_id: str, raw_nonce: str) -> str:
        """What an iOS app receives: the nonce claim is SHA-256(raw nonce) in hex (§2.5)."""
        hashed = hashlib.sha256(raw_nonce.encode()).hexdigest()
        person = self.users[user]
        # The app's user authenticated on the device for this token.
        return self.id_token(person, bundle_id, hashed, auth_time=self.authenticate(person))

    def notification(self, event_type: str, user: str, aud: str, *,
                     key: RSAKey | None = None, jti: str | None = None,
                     events_as_string: bool = True) -> bytes:
        """A server-to-server notification body (§2.7): `events` is a JSON *string*."""
        person = self.users[user]
        team = self.clients[aud].team_id if aud in self.clients else "OTHERTEAM"
        event: dict[str, Any] = {"type": event_type, "sub": self.sub_for(person, team),
                                 "event_time": int(self.clock() * 1000)}
        if event_type.startswith("email-"):
            event.update(email=person.email, is_private_email="true")
        claims = {"iss": ISSUER, "aud": aud, "iat": int(self.clock()),
                  "jti": jti or secrets.token_hex(8),
                  "events": json.dumps(event) if events_as_string else event}
        return json.dumps({"payload": self.keys.sign(claims, key=key)}).encode()
