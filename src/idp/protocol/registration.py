"""Dynamic client registration metadata (RFC 7591 §2, OIDC Dynamic Client Registration 1.0
§2) read into the fields of a registration, and a registration written back as metadata.

The registration rules themselves (redirect URIs, algorithms, key material) are the ones every
way of registering shares (`idp.services.accounts.admin.registration`); what is here is the
wire format and the policy for clients that register themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from idp import errors
from idp.crypto.client_keys import CLIENT_SIGNING_ALGS
from idp.domain import ClientConfig
from idp.protocol.client_display import DISPLAY_URIS
from idp.protocol.scopes import MAX_SCOPE_LENGTH, parse_scope

# Fields the client MUST NOT send on an update (RFC 7592 §2.2): the server sets them.
SERVER_FIELDS = ("registration_access_token", "registration_client_uri",
                 "client_secret_expires_at", "client_id_issued_at")
DEFAULT_SCOPES = ("openid", "profile", "email")


@dataclass(frozen=True)
class Policy:
    """What a self-registered client may have (IDP_REGISTRATION_GRANT_TYPES, _SCOPES)."""

    grant_types: tuple[str, ...]
    scopes: tuple[str, ...]


def _strings(metadata: dict[str, Any], name: str) -> list[str] | None:
    value = metadata.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise errors.InvalidClientMetadata(f"{name} must be an array of strings")
    return value


def _string(metadata: dict[str, Any], name: str) -> str | None:
    value = metadata.get(name)
    if value is not None and not isinstance(value, str):
        raise errors.InvalidClientMetadata(f"{name} must be a string")
    return value


def registration_fields(metadata: dict[str, Any], policy: Policy) -> dict[str, Any]:
    """The keyword arguments of a registration for these metadata, or the RFC 7591 §3.2.2
    error. Metadata this server does not understand are ignored (§2); those it understands
    but does not keep (client_uri, contacts, ...) are left out of the answer, which
    is how §3.2.1 says a server tells the client what it registered."""
    if metadata.get("software_statement") is not None:
        # §2.3: we accept no statements, and ignoring one would register something other
        # than what its issuer vouched for.
        raise errors.UnapprovedSoftwareStatement()
    redirect_uris = _strings(metadata, "redirect_uris") or []
    method = _string(metadata, "token_endpoint_auth_method") or "client_secret_basic"  # §2
    grant_types = _strings(metadata, "grant_types") or ["authorization_code"]
    response_types = _strings(metadata, "response_types")
    # §2.1: grant_types and response_types must agree; we have the code flow only.
    if response_types is None:
        response_types = ["code"] if "authorization_code" in grant_types else []
    if any(r != "code" for r in response_types):
        raise errors.InvalidClientMetadata("the only response type is code")
    if ("code" in response_types) != ("authorization_code" in grant_types):
        raise errors.InvalidClientMetadata(
            "response_types code goes with grant_types authorization_code (RFC 7591 §2.1)")
    refused = [g for g in grant_types if g not in policy.grant_types]
    if refused:
        raise errors.InvalidClientMetadata(f"grant type {refused[0][:64]} is not available to "
                                           "self-registered clients")
    raw_scope = _string(metadata, "scope")
    if raw_scope is not None and len(raw_scope) > MAX_SCOPE_LENGTH:
        raise errors.InvalidClientMetadata("scope is too long")
    # §2: "If omitted, an authorization server MAY register a client with a default set".
    scopes = (parse_scope(raw_scope) if raw_scope is not None
              else [s for s in DEFAULT_SCOPES if s in policy.scopes])
    refused = [s for s in scopes if s not in policy.scopes]
    if refused:
        raise errors.InvalidClientMetadata(f"scope {refused[0][:64]} is not available to "
                                           "self-registered clients")
    if not scopes:
        raise errors.InvalidClientMetadata("scope must name at least one scope")
    signing_alg = _string(metadata, "token_endpoint_auth_signing_alg")
    if signing_alg is not None and signing_alg not in CLIENT_SIGNING_ALGS:
        raise errors.InvalidClientMetadata(
            f"token_endpoint_auth_signing_alg must be one of {', '.join(CLIENT_SIGNING_ALGS)}")
    jwks = metadata.get("jwks")
    if jwks is not None and not isinstance(jwks, dict):
        raise errors.InvalidClientMetadata("jwks must be a JSON Web Key Set object")
    flags = {name: metadata.get(name, False) for name in (
        "backchannel_logout_session_required", "require_pushed_authorization_requests",
        "dpop_bound_access_tokens")}
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise errors.InvalidClientMetadata(f"{name} must be a boolean")
    return {
        # OIDC Registration §2: client_name may be absent.
        "name": _string(metadata, "client_name") or "",
        "redirect_uris": redirect_uris,
        "client_type": "public" if method == "none" else "confidential",
        "application_type": _string(metadata, "application_type") or "web",
        "token_endpoint_auth_method": method,
        "grant_types": list(dict.fromkeys(grant_types)),
        "scopes": scopes,
        # OIDC Registration §2: RS256 when absent.
        "id_token_signed_response_alg":
            _string(metadata, "id_token_signed_response_alg") or "RS256",
        # RFC 9700 §2.1.1: every self-registered client uses PKCE.
        "require_pkce": True,
        "post_logout_redirect_uris": _strings(metadata, "post_logout_redirect_uris") or [],
        "backchannel_logout_uri": _string(metadata, "backchannel_logout_uri"),
        # Back-Channel Logout §2.2: false when absent.
        "backchannel_logout_session_required": flags["backchannel_logout_session_required"],
        "jwks": jwks,
        "jwks_uri": _string(metadata, "jwks_uri"),
        # RFC 9126 §6.
        "require_par": flags["require_pushed_authorization_requests"],
        # RFC 9449 §5.2: false when absent.
        "dpop_bound_access_tokens": flags["dpop_bound_access_tokens"],
        # OIDC Registration §2, OIDC Core §8: public when absent.
        "subject_type": _string(metadata, "subject_type") or "public",
        "sector_identifier_uri": _string(metadata, "sector_identifier_uri"),
        # OIDC Registration §2: shown on the consent page (checked with the other rules).
        **{name: _string(metadata, name) for name in DISPLAY_URIS},
    }


def client_metadata(client: ClientConfig) -> dict[str, Any]:
    """A registration as RFC 7591 §3.2.1 metadata (without the server-set fields)."""
    metadata: dict[str, Any] = {
        "client_id": client.client_id,
        "client_name": client.name,
        "application_type": client.application_type,
        "redirect_uris": list(client.redirect_uris),
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "grant_types": list(client.grant_types),
        "response_types": ["code"] if "authorization_code" in client.grant_types else [],
        "scope": " ".join(client.allowed_scopes),
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "backchannel_logout_session_required": client.backchannel_logout_session_required,
        "require_pushed_authorization_requests": client.require_par,
        "dpop_bound_access_tokens": client.dpop_bound_access_tokens,
        "subject_type": client.subject_type,
    }
    if client.sector_identifier_uri is not None:
        metadata["sector_identifier_uri"] = client.sector_identifier_uri
    for name in ("backchannel_logout_uri", "jwks", "jwks_uri", *DISPLAY_URIS):
        if getattr(client, name) is not None:
            metadata[name] = getattr(client, name)
    return metadata
