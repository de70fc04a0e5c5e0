"""Which claims a token or UserInfo response carries (OIDC Core §2, §3.1.3.6, §5.3, §5.5).

User attributes are filtered by a whitelist of claim names, so no stored attribute can overwrite
a protocol claim such as `iss` or `aud` (OIDC-23).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from idp.protocol.scopes import SUPPORTED_CLAIMS, claims_for_scopes

PROTOCOL_CLAIMS = frozenset(
    {"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "auth_time", "nonce", "acr", "amr",
     "azp", "at_hash", "c_hash", "sid", "scope", "client_id", "consent", "typ", "cnf"}
)


def requested_individual_claims(claims_param: dict[str, Any] | None) -> set[str]:
    """Known user claims named in the `claims` parameter, for either target."""
    if not claims_param:
        return set()
    names: set[str] = set()
    for member in ("userinfo", "id_token"):
        names.update(claims_param.get(member) or {})
    return names & set(SUPPORTED_CLAIMS) - {"sub"}


def requested_sub(claims_param: dict[str, Any] | None) -> str | None:
    """OIDC-10: a `sub` requested with a specific value names the only acceptable end-user."""
    for member in ("id_token", "userinfo"):
        spec = ((claims_param or {}).get(member) or {}).get("sub")
        if isinstance(spec, dict) and isinstance(spec.get("value"), str):
            return str(spec["value"])
    return None


def user_claims(email: str | None, email_verified: bool, profile: dict[str, Any],
                updated_at: int) -> dict[str, Any]:
    """Every releasable claim the account holds, keyed by claim name."""
    values: dict[str, Any] = {
        name: profile[name] for name in SUPPORTED_CLAIMS if name in profile and name != "sub"
    }
    if email is not None:
        values["email"] = email
        values["email_verified"] = email_verified
    values["updated_at"] = updated_at
    return values


def release(available: dict[str, Any], scopes: list[str], granted_claims: list[str],
            target: str, claims_param: dict[str, Any] | None) -> dict[str, Any]:
    """Claims for `target` ("userinfo" or "id_token").

    Scope-released claims go to UserInfo (OIDC Core §5.4: with a code flow they are returned
    from the UserInfo endpoint); individually requested ones go where the `claims` parameter
    asked for them, provided the end-user consented to them.
    """
    allowed = claims_for_scopes(scopes) | set(granted_claims)
    wanted: set[str] = set()
    if target == "userinfo":
        wanted |= claims_for_scopes(scopes)
    wanted |= set((claims_param or {}).get(target) or {})
    names = (wanted & allowed) - PROTOCOL_CLAIMS
    return {name: available[name] for name in sorted(names) if name in available}


def at_hash(access_token: str) -> str:
    """OIDC Core §3.1.3.6: left half of the hash of the token, with the hash of RS256/ES256."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")
