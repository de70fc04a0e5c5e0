"""One upstream registration (federation.md §6, §9 requirement 1).

Every URL is configuration, never a constant (federation.md: "Treat every endpoint value as
configuration"): the presets below fill in the public values for each provider type, and any
field given explicitly wins, so the fakes can stand in for the real upstreams.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from idp.protocol.redirect_uri import well_formed
from idp.settings import is_loopback_host

UpstreamType = Literal["google", "facebook", "apple", "oidc"]
# RFC 8725 §3.1: an explicit list; `none` and HS* (a shared secret we do not hold) never.
ID_TOKEN_ALGS = frozenset({"RS256", "ES256"})
# federation.md §2.2: Apple's client secret JWT may live at most 15,777,000 s (six months).
APPLE_SECRET_MAX_LIFETIME = 15_777_000
MAX_LEEWAY_SECONDS = 120  # requirement 8
MAX_TRANSACTION_SECONDS = 600  # requirement 3: a state expires within 10 min


def is_upstream_url(value: str) -> bool:
    """https only; plain http is allowed for a fake served on this machine. Never a URL that
    `urlsplit` would read differently from how it is written (redirect_uri.well_formed)."""
    if not well_formed(value):
        return False
    parts = urlsplit(value)
    if parts.scheme == "https":
        return bool(parts.hostname)
    return parts.scheme == "http" and is_loopback_host(parts.hostname)


class LinkingPolicy(StrEnum):
    prompt = "prompt"
    auto_if_authoritative = "auto_if_authoritative"
    deny = "deny"


class SyncMode(StrEnum):
    import_once = "import_once"
    update_every_login = "update_every_login"


class IssParameterPolicy(StrEnum):
    """RFC 9207 §2.4. `if_advertised`: a missing `iss` is rejected only when the metadata says
    `authorization_response_iss_parameter_supported`; `required`: always rejected. A present
    `iss` must always equal the issuer (Google sends it without advertising it, §1.3)."""

    if_advertised = "if_advertised"
    required = "required"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ClaimMapping(Frozen):
    """An upstream claim copied into a profile attribute (requirement 35)."""

    claim: str
    attribute: str
    sync: SyncMode = SyncMode.import_once


class EmailAuthority(Frozen):
    """For which addresses the upstream is the mailbox owner (requirement 21)."""

    domains: frozenset[str] = frozenset()
    # Google: an `hd` claim equal to the address's domain makes Google authoritative.
    hosted_domain_claim: bool = False

    @field_validator("domains")
    @classmethod
    def _lower(cls, value: frozenset[str]) -> frozenset[str]:
        return frozenset(d.lower().strip(".") for d in value)


DEFAULT_MAPPINGS = (
    ClaimMapping(claim="name", attribute="name"),
    ClaimMapping(claim="given_name", attribute="given_name"),
    ClaimMapping(claim="family_name", attribute="family_name"),
    ClaimMapping(claim="picture", attribute="picture"),
)

_GOOGLE = "https://accounts.google.com"
_APPLE = "https://appleid.apple.com"
_PRESETS: dict[str, dict[str, Any]] = {
    "google": {
        "issuer": _GOOGLE,
        # §1.1: the ID token `iss` may be either spelling.
        "allowed_issuers": frozenset({_GOOGLE, "accounts.google.com"}),
        "discovery_url": f"{_GOOGLE}/.well-known/openid-configuration",
        "scopes": ("openid", "email", "profile"),
        "email_authority": EmailAuthority(
            domains=frozenset({"gmail.com", "googlemail.com"}), hosted_domain_claim=True),
    },
    "apple": {
        "issuer": _APPLE,
        "discovery_url": f"{_APPLE}/.well-known/openid-configuration",
        "scopes": ("name", "email"),
        # §2.1: client_secret_post only; PKCE not advertised, so not relied on.
        "token_endpoint_auth_method": "client_secret_post",
        "pkce": False,
        "email_authority": EmailAuthority(domains=frozenset({
            "icloud.com", "me.com", "mac.com", "privaterelay.appleid.com", "private.icloud.com",
        })),
    },
    "facebook": {
        "issuer": "https://www.facebook.com",
        # §3.3: Limited Login tokens were seen with both values.
        "allowed_issuers": frozenset({"https://www.facebook.com", "https://facebook.com"}),
        "jwks_uri": "https://limited.facebook.com/.well-known/oauth/openid/jwks/",
        "scopes": ("email", "public_profile"),
        "token_endpoint_auth_method": "client_secret_post",
        "pkce": False,
    },
    "oidc": {},
}


class UpstreamConfig(Frozen):
    alias: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    type: UpstreamType
    issuer: str
    allowed_issuers: frozenset[str] = frozenset()
    discovery_url: str | None = None
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    jwks_uri: str | None = None
    userinfo_endpoint: str | None = None
    revocation_endpoint: str | None = None
    graph_api_url: str | None = None  # Facebook
    graph_api_version: str = Field(default="v21.0", pattern=r"^v\d+\.\d+$")

    client_id: str = Field(min_length=1)
    client_secret: SecretStr | None = None
    # Other client ids of ours that may appear in `aud` (Apple App IDs of the same team).
    additional_audiences: frozenset[str] = frozenset()
    token_endpoint_auth_method: Literal["client_secret_basic", "client_secret_post"] = (
        "client_secret_basic")
    apple_team_id: str | None = None
    apple_key_id: str | None = None
    apple_private_key: SecretStr | None = None
    apple_client_secret_ttl: int = Field(default=86_400, ge=60, le=APPLE_SECRET_MAX_LIFETIME)

    scopes: tuple[str, ...] = ("openid", "email", "profile")
    pkce: bool = True
    id_token_signing_algs: tuple[str, ...] = ("RS256",)
    hosted_domain: str | None = None  # Google: only accept this `hd`
    linking_policy: LinkingPolicy = LinkingPolicy.prompt
    email_authority: EmailAuthority = EmailAuthority()
    claim_mappings: tuple[ClaimMapping, ...] = DEFAULT_MAPPINGS
    leeway_seconds: int = Field(default=60, ge=0, le=MAX_LEEWAY_SECONDS)
    iss_parameter: IssParameterPolicy = IssParameterPolicy.if_advertised
    transaction_ttl: int = Field(default=MAX_TRANSACTION_SECONDS, ge=30,
                                 le=MAX_TRANSACTION_SECONDS)

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        preset = dict(_PRESETS.get(str(data.get("type")), {}))
        if data.get("type") == "facebook":
            version = data.get("graph_api_version", "v21.0")
            preset["authorization_endpoint"] = f"https://www.facebook.com/{version}/dialog/oauth"
            preset["token_endpoint"] = f"https://graph.facebook.com/{version}/oauth/access_token"
            preset["graph_api_url"] = f"https://graph.facebook.com/{version}"
        merged = {**preset, **{k: v for k, v in data.items() if v is not None}}
        if not merged.get("allowed_issuers") and "issuer" in merged:
            merged["allowed_issuers"] = frozenset({merged["issuer"]})
        return merged

    @model_validator(mode="after")
    def _check(self) -> UpstreamConfig:
        if self.type != "facebook" and not (self.discovery_url or (
                self.authorization_endpoint and self.token_endpoint and self.jwks_uri)):
            raise ValueError("give discovery_url, or the authorization, token and JWKS URLs")
        if self.type == "apple":
            if not (self.apple_team_id and self.apple_key_id and self.apple_private_key):
                raise ValueError("Apple needs apple_team_id, apple_key_id and apple_private_key")
        elif self.client_secret is None:
            raise ValueError("client_secret is required")
        if not set(self.id_token_signing_algs) <= ID_TOKEN_ALGS:
            raise ValueError(f"ID token algorithms are limited to {sorted(ID_TOKEN_ALGS)}")
        return self

    @field_validator("discovery_url", "authorization_endpoint", "token_endpoint", "jwks_uri",
                     "userinfo_endpoint", "revocation_endpoint", "graph_api_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is None or is_upstream_url(value):
            return value
        raise ValueError("upstream URLs must be https")

    @property
    def audiences(self) -> frozenset[str]:
        return frozenset({self.client_id}) | self.additional_audiences

    @property
    def namespace(self) -> str:
        """Requirement 14: the first half of the identity key (the second is the subject)."""
        if self.type == "apple":
            return f"apple:{self.apple_team_id}"
        if self.type == "facebook":
            return f"facebook:{self.client_id}"
        return self.issuer
