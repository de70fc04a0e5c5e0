"""Authorization request validation, in the order the specs require.

`check_client` and `check_redirect_uri` run first; until both pass, every error is shown to the
end-user and never redirected (RFC 6749 §4.1.2.1, RFC 9700 §4.11.2). The remaining checks
raise redirectable errors, delivered to the verified redirect URI with `state` and `iss`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from idp import errors
from idp.domain import AuthorizationRequest, ClientConfig
from idp.protocol.acr import check_acr_claim
from idp.protocol.redirect_uri import redirect_uri_matches
from idp.protocol.scopes import MAX_SCOPE_LENGTH, MAX_SCOPE_VALUES, parse_scope

RESPONSE_MODES = ("query", "form_post")
PROMPT_VALUES = frozenset({"none", "login", "consent", "select_account"})
# RFC 7636 §4.2: BASE64URL(SHA256(verifier)) is always 43 characters; so is RFC 9449 §10's
# dpop_jkt, a SHA-256 JWK thumbprint (RFC 7638).
_S256_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
MAX_PARAM_LENGTH = 4096
MAX_CLAIMS_LENGTH = 8192
MAX_ID_TOKEN_HINT_LENGTH = 16384

Params = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class VerifiedTarget:
    """Where errors may be delivered once client and redirect URI are verified."""

    client: ClientConfig
    redirect_uri: str
    response_mode: str
    state: str | None


def single_values(params: Params) -> tuple[dict[str, str], set[str]]:
    """The parameters as a dict, plus the names sent more than once (RFC 6749 §3.1)."""
    values: dict[str, str] = {}
    repeated: set[str] = set()
    for name, value in params:
        if name in values:
            repeated.add(name)
        values[name] = value
    return values, repeated


def check_client(values: dict[str, str], repeated: set[str], client: ClientConfig | None) -> None:
    if "client_id" in repeated or not values.get("client_id"):
        raise errors.InvalidRequest("client_id is missing or repeated", redirectable=False)
    if client is None:
        raise errors.InvalidClient("The client is not known", redirectable=False)


def check_redirect_uri(
    values: dict[str, str], repeated: set[str], client: ClientConfig, dev_mode: bool = False
) -> VerifiedTarget:
    uri = values.get("redirect_uri")
    if "redirect_uri" in repeated or not uri:
        # OIDC Core §3.1.2.1: required; we require it for plain OAuth requests too.
        raise errors.InvalidRequest("redirect_uri is missing or repeated", redirectable=False)
    if not redirect_uri_matches(client.redirect_uris, uri, client.application_type, dev_mode):
        raise errors.InvalidRequest(
            "redirect_uri is not registered for this client", redirectable=False
        )
    mode = values.get("response_mode") or "query"
    state = values.get("state") if "state" not in repeated else None
    target = VerifiedTarget(client, uri, mode if mode in RESPONSE_MODES else "query", state)
    return target


def check_request(values: dict[str, str], repeated: set[str], target: VerifiedTarget,
                  default_pkce_for_confidential: bool) -> AuthorizationRequest:
    """Everything after the redirect URI; raises redirectable errors."""
    client = target.client
    if repeated:
        raise errors.InvalidRequest(f"parameter {sorted(repeated)[0]} is repeated")
    for name, value in values.items():
        if len(value) > (MAX_ID_TOKEN_HINT_LENGTH if name == "id_token_hint" else MAX_PARAM_LENGTH):
            raise errors.InvalidRequest(f"parameter {name} is too long")
        if "\x00" in value:
            # No parameter legitimately holds NUL, and PostgreSQL text cannot store one.
            raise errors.InvalidRequest(f"parameter {name} contains a NUL character")
    # OIDC Core §6: request objects are not supported, and must not be silently ignored.
    if "request" in values:
        raise errors.RequestNotSupported()
    if "request_uri" in values:
        raise errors.RequestUriNotSupported()
    if values.get("response_mode", "query") not in RESPONSE_MODES:
        raise errors.InvalidRequest("response_mode must be query or form_post")

    response_type = values.get("response_type")
    if not response_type:
        raise errors.InvalidRequest("response_type is missing")
    if response_type != "code":
        # RFC 9700 §2.1.2: no implicit or hybrid response types.
        raise errors.UnsupportedResponseType("Only response_type=code is supported")
    if "authorization_code" not in client.grant_types:
        raise errors.UnauthorizedClient("The client may not use the authorization code grant")

    scopes = check_scope(values.get("scope"), client)
    code_challenge = check_pkce(values, client, default_pkce_for_confidential)
    prompt = check_prompt(values.get("prompt"))
    max_age = check_max_age(values.get("max_age"))
    claims = check_claims(values.get("claims"))
    check_acr_claim(claims)
    dpop_jkt = values.get("dpop_jkt")
    if dpop_jkt is not None and not _S256_CHALLENGE.match(dpop_jkt):
        raise errors.InvalidRequest("dpop_jkt must be the base64url SHA-256 JWK thumbprint of "
                                    "the client's DPoP key (RFC 9449 §10)")

    return AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=target.redirect_uri,
        response_mode=target.response_mode,
        scopes=tuple(scopes),
        state=target.state,
        nonce=values.get("nonce") or None,
        code_challenge=code_challenge,
        prompt=prompt,
        max_age=max_age,
        login_hint=values.get("login_hint") or None,
        id_token_hint=values.get("id_token_hint") or None,
        ui_locales=tuple(values.get("ui_locales", "").split()),
        acr_values=tuple(values.get("acr_values", "").split()),
        claims=claims,
        dpop_jkt=dpop_jkt,
    )


def check_scope(raw: str | None, client: ClientConfig) -> list[str]:
    if raw is not None and len(raw) > MAX_SCOPE_LENGTH:
        raise errors.InvalidScope("scope is too long")
    scopes = parse_scope(raw)
    if not scopes:
        raise errors.InvalidScope("scope is missing")
    if len(scopes) > MAX_SCOPE_VALUES:
        raise errors.InvalidScope("too many scope values")
    unknown = [s for s in scopes if s not in client.allowed_scopes]
    if unknown:
        raise errors.InvalidScope(f"scope {unknown[0]} is not allowed for this client")
    return scopes


def check_pkce(values: dict[str, str], client: ClientConfig, default_for_confidential: bool
               ) -> str | None:
    challenge = values.get("code_challenge")
    method = values.get("code_challenge_method")
    if challenge is None:
        if method is not None:
            raise errors.InvalidRequest("code_challenge_method without code_challenge")
        # RFC 9700 §2.1.1: PKCE for public clients always; for confidential ones by default.
        if client.is_public or (client.require_pkce and default_for_confidential):
            raise errors.InvalidRequest("PKCE is required: send code_challenge with S256")
        return None
    # RFC 7636 §4.3 defaults the method to "plain", which we refuse (BCP-07).
    if method != "S256":
        raise errors.InvalidRequest("code_challenge_method must be S256")
    if not _S256_CHALLENGE.match(challenge):
        raise errors.InvalidRequest("code_challenge is not a base64url S256 value")
    return challenge


def check_prompt(raw: str | None) -> frozenset[str]:
    if raw is None:
        return frozenset()
    values = frozenset(raw.split())
    unknown = values - PROMPT_VALUES
    if unknown:
        raise errors.InvalidRequest(f"prompt value {sorted(unknown)[0]} is not supported")
    # OIDC Core §3.1.2.1: none must not be combined with any other value.
    if "none" in values and len(values) > 1:
        raise errors.InvalidRequest("prompt=none cannot be combined with other values")
    return values


def check_max_age(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10:
        raise errors.InvalidRequest("max_age must be a non-negative integer")
    return int(raw)


def check_claims(raw: str | None) -> dict[str, Any] | None:
    """OIDC Core §5.5: a JSON object with optional `userinfo` and `id_token` members."""
    if raw is None:
        return None
    if len(raw) > MAX_CLAIMS_LENGTH:
        raise errors.InvalidRequest("claims is too long")
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise errors.InvalidRequest("claims is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise errors.InvalidRequest("claims must be a JSON object")
    result: dict[str, Any] = {}
    for member in ("userinfo", "id_token"):
        requested = parsed.get(member)
        if requested is None:
            continue
        if not isinstance(requested, dict):
            raise errors.InvalidRequest(f"claims.{member} must be a JSON object")
        for name, spec in requested.items():
            if spec is not None and not isinstance(spec, dict):
                raise errors.InvalidRequest(f"claims.{member}.{name} must be null or an object")
        result[member] = requested
    return result
