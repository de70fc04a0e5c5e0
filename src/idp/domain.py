"""Plain, frozen data that crosses layers (protocol functions never see ORM rows)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ClientConfig:
    client_id: str
    name: str
    client_type: str  # "public" | "confidential"
    application_type: str  # "web" | "native"
    token_endpoint_auth_method: str  # client_secret_basic|client_secret_post|private_key_jwt|none
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    allowed_scopes: tuple[str, ...]
    id_token_signed_response_alg: str = "RS256"
    require_pkce: bool = True
    secret_hash: str | None = field(default=None, repr=False)
    long_sessions: bool = False
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    backchannel_logout_uri: str | None = None
    backchannel_logout_session_required: bool = True
    post_logout_redirect_uris: tuple[str, ...] = ()
    optional_scopes: tuple[str, ...] = ()
    event_uri: str | None = None
    # RFC 9126 §6: authorization requests only through the pushed authorization endpoint.
    require_par: bool = False
    # RFC 9449 §5.2: every token request of this client carries a DPoP proof.
    dpop_bound_access_tokens: bool = False
    # Every sign-in to this client uses a second factor (OIDC Core §2 amr "mfa"; step-up).
    require_mfa: bool = False
    # OIDC Core §8: "public" or "pairwise"; a pairwise client's sector (OIDC Core §8.1), in
    # which every account has a `sub` of its own (None for a public client).
    subject_type: str = "public"
    sector_identifier_uri: str | None = None
    sector_identifier: str | None = None
    # OIDC Registration §2 / RFC 7591 §2: shown on the consent page.
    logo_uri: str | None = None
    policy_uri: str | None = None
    tos_uri: str | None = None

    @property
    def is_public(self) -> bool:
        return self.client_type == "public"


@dataclass(frozen=True)
class AuthorizationRequest:
    """An authorization request that passed validation (OIDC Core §3.1.2.2)."""

    client_id: str
    redirect_uri: str
    response_mode: str
    scopes: tuple[str, ...]
    state: str | None = None
    nonce: str | None = None
    code_challenge: str | None = None
    prompt: frozenset[str] = frozenset()
    max_age: int | None = None
    login_hint: str | None = None
    id_token_hint: str | None = None
    ui_locales: tuple[str, ...] = ()
    acr_values: tuple[str, ...] = ()
    claims: dict[str, Any] | None = None
    # The end-user the request names (verified id_token_hint or requested sub), resolved once
    # when the request is validated and kept with it for every later page.
    hinted_sub: str | None = None
    # Set when the request is a device's (RFC 8628): approving it settles that device code
    # instead of issuing an authorization code.
    device_code_hash: str | None = None
    # RFC 9449 §10: the DPoP key (its JWK thumbprint) the code is to be bound to.
    dpop_jkt: str | None = None

    @property
    def is_openid(self) -> bool:
        return "openid" in self.scopes

    def to_json(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data["scopes"] = list(self.scopes)
        data["prompt"] = sorted(self.prompt)
        data["ui_locales"] = list(self.ui_locales)
        data["acr_values"] = list(self.acr_values)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AuthorizationRequest:
        return cls(
            **{
                **data,
                "scopes": tuple(data["scopes"]),
                "prompt": frozenset(data["prompt"]),
                "ui_locales": tuple(data["ui_locales"]),
                "acr_values": tuple(data["acr_values"]),
            }
        )


@dataclass(frozen=True)
class SessionInfo:
    sid: str
    user_id: str
    auth_time: int
    amr: tuple[str, ...]
    acr: str
    last_used_at: int | None = None
