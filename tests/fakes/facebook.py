"""A fake Facebook (federation.md §8 "Facebook fake"): the OAuth dialog under any API version,
the code exchange, `debug_token`, Graph `/me` with `appsecret_proof`, expiring pictures,
permission removal, Limited Login ID tokens, and `signed_request` senders."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

from tests.fakes.common import Clock, FakeServer, Recorded, SigningKeys, json_response, redirect

_V = r"(?:/v\d+\.\d+)?"


@dataclass
class FacebookUser:
    person: str
    name: str = "Fay Book"
    first_name: str = "Fay"
    last_name: str = "Book"
    email: str | None = "fay@example.com"
    silhouette: bool = False


def scenario_users() -> dict[str, FacebookUser]:
    return {
        "fay": FacebookUser("p1"),
        "phone_only": FacebookUser("p2", "Phil Phone", "Phil", "Phone", email=None),
        "unconfirmed": FacebookUser("p3", "Una Confirmed", "Una", "Confirmed",
                                    email="una@gmail.com"),
        "dev_mode": FacebookUser("p4", silhouette=True),
    }


def tiny_png(rgb: tuple[int, int, int] = (66, 103, 178)) -> bytes:
    """A real 1x1 PNG of one colour, so tests can tell two pictures apart."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" + bytes(rgb))) + chunk(b"IEND", b""))


@dataclass
class FacebookApp:
    secret: str
    redirect_uris: list[str]
    require_proof: bool = True


@dataclass
class _Token:
    app_id: str
    user: FacebookUser
    scopes: list[str]
    expires_at: float
    valid: bool = True


@dataclass
class FakeFacebook(FakeServer):
    clock: Clock = field(default_factory=Clock)
    base: str = "https://facebook.fake"
    apps: dict[str, FacebookApp] = field(default_factory=dict)
    users: dict[str, FacebookUser] = field(default_factory=scenario_users)
    login_user: str = "fay"
    deny: bool = False
    declined: set[str] = field(default_factory=set)  # optional permissions the user skips
    token_app_override: str | None = None  # mint the user token for another app id
    debug_hook: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    # What the picture CDN serves (tests swap in other bytes or types), and for how long a
    # picture URL works (§3.1: "Profile picture URLs returned by this edge will expire").
    picture_bytes: bytes = field(default_factory=tiny_png)
    picture_type: str = "image/png"
    picture_ttl: int = 86_400

    def __post_init__(self) -> None:
        FakeServer.__init__(self, self.base)
        self.keys = SigningKeys()
        self.codes: dict[str, tuple[str, str, FacebookUser, list[str], bool]] = {}
        self.tokens: dict[str, _Token] = {}
        self.removed: list[tuple[str, str]] = []  # (app id, asid)
        # Each dialog's `auth_type` ("" when absent); `reauthenticate` re-asks the password.
        self.auth_types: list[str] = []
        self._cdn_key = secrets.token_bytes(16)
        self.route("GET", r"/v\d+\.\d+/dialog/oauth", self._dialog)
        self.route("GET", r"/v\d+\.\d+/oauth/access_token", self._access_token)
        self.route("POST", r"/v\d+\.\d+/oauth/access_token", self._access_token)
        self.route("GET", f"{_V}/debug_token", self._debug_token)
        self.route("GET", f"{_V}/me", self._me)
        self.route("GET", rf"{_V}/(\d+)/picture", self._picture)
        self.route("GET", r"/cdn/(\d+)\.img", self._cdn)
        self.route("DELETE", rf"{_V}/(\d+)/permissions", self._remove_permissions)
        self.route("GET", r"/\.well-known/oauth/openid/jwks/", self._jwks)

    def register(self, app_id: str, secret: str, redirect_uris: list[str], *,
                 require_proof: bool = True) -> None:
        self.apps[app_id] = FacebookApp(secret, redirect_uris, require_proof)

    def asid(self, user: FacebookUser, app_id: str) -> str:
        """App-scoped: the same person has a different id in every app (§3.4)."""
        digest = hashlib.sha256(f"{app_id}/{user.person}".encode()).hexdigest()
        return str(10**15 + int(digest[:12], 16))

    def _dialog(self, request: httpx.Request, entry: Recorded, _: Any) -> httpx.Response:
        p = entry.params
        app = self.apps.get(p.get("client_id", ""))
        if app is None or p.get("redirect_uri") not in app.redirect_uris:
            return httpx.Response(400, text="URL blocked: redirect_uri is not whitelisted")
        state = p.get("state", "")
        self.auth_types.append(p.get("auth_type", ""))
        if self.deny:
            answer = {"error": "access_denied", "error_code": "200",
                      "error_description": "Permissions error", "error_reason": "user_denied",
                      "state": state}
            return redirect(f"{p['redirect_uri']}?{urlencode(answer)}#_=_")
        asked = [s for s in re.split(r"[ ,]+", p.get("scope", "")) if s]
        granted = sorted({"public_profile", *asked} - self.declined)
        code = secrets.token_urlsafe(24)
        self.issued.append(code)
        self.codes[code] = (p["client_id"], p["redirect_uri"], self.users[self.login_user],
                            granted, False)
        return redirect(f"{p['redirect_uri']}?{urlencode({'code': code, 'state': state})}#_=_")

    def _access_token(self, request: httpx.Request, entry: Recorded, _: Any) -> httpx.Response:
        p = entry.form if request.method == "POST" else entry.params
        app = self.apps.get(p.get("client_id", ""))
        if app is None or not secrets.compare_digest(app.secret, p.get("client_secret", "")):
            return self._error("Error validating client secret.", 1, 400)
        found = self.codes.get(p.get("code", ""))
        if found is None or found[4] or found[0] != p["client_id"]:
            return self._error("This authorization code has been used.", 100, 400)
        self.codes[p["code"]] = (*found[:4], True)
        if found[1] != p.get("redirect_uri"):
            return self._error("Error validating verification code.", 100, 400)
        token = self.issue_token(self.token_app_override or found[0], found[2], found[3])
        return json_response({"access_token": token, "token_type": "bearer",
                              "expires_in": 5_183_944})

    def issue_token(self, app_id: str, user: FacebookUser, scopes: list[str]) -> str:
        token = "EAA" + secrets.token_urlsafe(32)
        self.issued.append(token)
        self.tokens[token] = _Token(app_id, user, scopes, self.clock() + 5_183_944)
        return token

    def _app_of(self, app_token: str) -> str | None:
        app_id, _, secret = app_token.partition("|")
        app = self.apps.get(app_id)
        return app_id if app is not None and secrets.compare_digest(app.secret, secret) \
            else None

    def _debug_token(self, request: httpx.Request, entry: Recorded, _: Any) -> httpx.Response:
        if self._app_of(entry.params.get("access_token", "")) is None:
            return self._error("Invalid OAuth access token.", 190, 400)
        token = self.tokens.get(entry.params.get("input_token", ""))
        if token is None:
            return json_response({"data": {"is_valid": False, "error": {
                "code": 190, "message": "Invalid OAuth access token."}}})
        data = {
            "app_id": token.app_id, "type": "USER", "application": "Brand",
            "data_access_expires_at": int(token.expires_at) + 7_776_000,
            "expires_at": int(token.expires_at), "is_valid": token.valid,
            "scopes": token.scopes,
            "granular_scopes": [{"scope": s} for s in token.scopes],
            "user_id": self.asid(token.user, token.app_id)}
        return json_response({"data": self.debug_hook(data) if self.debug_hook else data})

    def _me(self, request: httpx.Request, entry: Recorded, _: Any) -> httpx.Response:
        p = entry.params
        token = self.tokens.get(p.get("access_token", ""))
        if token is None or not token.valid or self.clock() > token.expires_at:
            return self._error("Error validating access token.", 190, 400)
        app = self.apps.get(token.app_id)
        expected = hmac.new((app.secret if app else "").encode(), p["access_token"].encode(),
                            hashlib.sha256).hexdigest()
        if app is not None and app.require_proof and not hmac.compare_digest(
                p.get("appsecret_proof", ""), expected):
            return self._error("Invalid appsecret_proof provided in the API argument", 100,
                               400)
        user, asid = token.user, self.asid(token.user, token.app_id)
        profile: dict[str, Any] = {"id": asid}
        fields = p.get("fields", "id,name").split(",")
        values = {"name": user.name, "first_name": user.first_name,
                  "last_name": user.last_name, "picture": {"data": self.picture(asid, user)}}
        if user.email is not None and "email" in token.scopes:
            values["email"] = user.email
        profile.update({k: v for k, v in values.items() if k in fields})
        return json_response(profile)

    def picture(self, asid: str, user: FacebookUser) -> dict[str, Any]:
        # §3.1: "Profile picture URLs returned by this edge will expire." Like the real CDN,
        # the URL carries its expiry (`oe`, hex seconds) and a signature over it (`oh`).
        expires = format(int(self.clock()) + self.picture_ttl, "x")
        return {"height": 50, "width": 50, "is_silhouette": user.silhouette,
                "url": self.url(f"/cdn/{asid}.img?oe={expires}&oh={self._cdn_hash(asid, expires)}")}

    def _cdn_hash(self, asid: str, expires: str) -> str:
        return hmac.new(self._cdn_key, f"{asid}:{expires}".encode(), hashlib.sha256).hexdigest()

    def _cdn(self, request: httpx.Request, entry: Recorded,
             match: re.Match[str]) -> httpx.Response:
        expires, signature = entry.params.get("oe", ""), entry.params.get("oh", "")
        if not hmac.compare_digest(signature, self._cdn_hash(match.group(1), expires)):
            return httpx.Response(403, text="Bad URL hash")
        if int(expires, 16) < self.clock():
            return httpx.Response(403, text="URL signature expired")
        return httpx.Response(200, content=self.picture_bytes,
                              headers={"Content-Type": self.picture_type})

    def _picture(self, request: httpx.Request, entry: Recorded,
                 match: re.Match[str]) -> httpx.Response:
        return json_response({"data": self.picture(match.group(1), self.users[self.login_user])})

    def _remove_permissions(self, request: httpx.Request, entry: Recorded,
                            match: re.Match[str]) -> httpx.Response:
        app_id = self._app_of(entry.params.get("access_token", ""))
        if app_id is None:
            return self._error("Invalid OAuth access token.", 190, 400)
        self.removed.append((app_id, match.group(1)))
        return json_response({"success": True})

    def _jwks(self, request: httpx.Request, entry: Recorded, _: Any) -> httpx.Response:
        return json_response(self.keys.jwks())

    @staticmethod
    def _error(message: str, code: int, status: int) -> httpx.Response:
        return json_response({"error": {"message": message, "type": "OAuthException",
                                        "code": code, "fbtrace_id": "AbCdEf"}}, status)

    def limited_login_token(self, user: str, app_id: str, nonce: str, *,
                            iss: str = "https://www.facebook.com") -> str:
        """A Limited Login ID token (§3.3); `iss` may be either observed value."""
        person, now = self.users[user], int(self.clock())
        return self.keys.sign({
            "iss": iss, "aud": app_id, "sub": self.asid(person, app_id), "iat": now,
            "exp": now + 3600, "jti": secrets.token_hex(8), "nonce": nonce,
            "name": person.name, "given_name": person.first_name,
            "family_name": person.last_name, "email": person.email})

    def signed_request(self, app_id: str, user: str, *, deletion: bool = False,
                       algorithm: str = "HMAC-SHA256", secret: str | None = None) -> str:
        """The deauthorize or data-deletion callback's form field (§3.5)."""
        person, now = self.users[user], int(self.clock())
        payload: dict[str, Any] = {"algorithm": algorithm, "issued_at": now,
                                   "user_id": self.asid(person, app_id)}
        if deletion:
            payload["expires"] = now + 3600
        encoded = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
        key = (secret if secret is not None else self.apps[app_id].secret).encode()
        signature = hmac.new(key, encoded.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(signature).rstrip(b"=").decode() + "." + encoded
