"""The upstream token endpoint's answer (RFC 6749 §5.1, §5.2) and the checks made on it."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

from idp.federation.claims import optional_str
from idp.federation.errors import InvalidIdToken, UpstreamUnavailable

_WIRE_ERROR_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz_")


@dataclass(frozen=True)
class TokenResponse:
    access_token: str = field(repr=False)
    token_type: str
    id_token: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    scope: str | None = None
    expires_in: int | None = None


def parse_token_response(body: dict[str, Any]) -> TokenResponse:
    access_token, token_type = body.get("access_token"), body.get("token_type")
    if not isinstance(access_token, str) or not isinstance(token_type, str):
        raise UpstreamUnavailable("the token response lacks access_token or token_type")
    expires_in = body.get("expires_in")
    return TokenResponse(
        access_token=access_token, token_type=token_type,
        id_token=optional_str(body.get("id_token")),
        refresh_token=optional_str(body.get("refresh_token")),
        scope=optional_str(body.get("scope")),
        expires_in=expires_in if isinstance(expires_in, int) else None,
    )


def granted_scopes(scope: str | None, requested: tuple[str, ...]) -> frozenset[str]:
    # RFC 6749 §5.1: an omitted scope means the requested one was granted.
    return frozenset(scope.replace(",", " ").split()) if scope else frozenset(requested)


def wire_error(body: dict[str, Any]) -> str:
    """The RFC 6749 §5.2 `error` code alone; descriptions are upstream text and not kept."""
    error = body.get("error")
    if isinstance(error, str) and error and set(error) <= _WIRE_ERROR_CHARS:
        return error
    return "unknown_error"


def basic_auth(client_id: str, secret: str) -> str:
    # RFC 6749 §2.3.1: both halves are form-urlencoded before base64.
    pair = f"{quote_plus(client_id, safe='')}:{quote_plus(secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


def check_at_hash(claims: dict[str, Any], access_token: str) -> None:
    """OIDC Core §3.1.3.8: at_hash is optional in the code flow, but when present it must be the
    left half of SHA-256 of the access token (RS256 / ES256)."""
    at_hash = claims.get("at_hash")
    if at_hash is None:
        return
    digest = hashlib.sha256(access_token.encode("ascii", "replace")).digest()
    expected = base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()
    if not isinstance(at_hash, str) or not hmac.compare_digest(at_hash, expected):
        raise InvalidIdToken("the ID token's at_hash does not match the access token")
