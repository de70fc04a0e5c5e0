"""Google Cross-Account Protection (RISC) Security Event Tokens, verification part
(federation.md §1.7, requirement 28).

"Validate the signature with the kid-selected key, `aud` ∈ your client ids and `iss` ==
`risc-configuration.issuer`. Do not check `exp`: security event tokens represent historical
events and as such, don't expire." The issuer has a trailing slash (`https://accounts.google.com/`).
De-duplicating by `jti` is the caller's (it needs storage).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from idp.crypto.client_keys import ClientKey
from idp.federation.claims import optional_str
from idp.federation.errors import FederationError, InvalidNotification, UpstreamUnavailable
from idp.federation.google import GoogleUpstream
from idp.federation.idtoken import check_audience, verify_signature

MAX_BODY_BYTES = 16 * 1024
RISC = "https://schemas.openid.net/secevent/risc/event-type/"
OAUTH = "https://schemas.openid.net/secevent/oauth/event-type/"


@dataclass(frozen=True)
class RiscEvent:
    type: str  # the event-type URI
    sub: str | None  # the Google `sub` for iss-sub subjects
    reason: str | None
    jti: str | None
    # `token-revoked`: the `oauth_token` subject's identifier and how it was derived
    # ("prefix" or "hash_base64_sha512_sha512", §1.7).
    token: str | None = None
    token_alg: str | None = None


def risc_configuration_url(client: GoogleUpstream) -> str:
    discovery = client.config.discovery_url
    if discovery is None or not discovery.endswith("/.well-known/openid-configuration"):
        raise UpstreamUnavailable("no RISC configuration for this upstream")
    return discovery.removesuffix("openid-configuration") + "risc-configuration"


async def verify_security_event(client: GoogleUpstream, body: bytes) -> list[RiscEvent]:
    if len(body) > MAX_BODY_BYTES:
        raise InvalidNotification("the security event token is too large")
    try:
        token = body.decode("ascii").strip()
    except UnicodeError:
        raise InvalidNotification("the security event token is not a JWT") from None
    configuration = await client._get(risc_configuration_url(client))
    issuer = configuration.body.get("issuer") if configuration.ok else None
    jwks_uri = configuration.body.get("jwks_uri") if configuration.ok else None
    if not isinstance(issuer, str) or not isinstance(jwks_uri, str):
        raise UpstreamUnavailable("Google's RISC configuration is unusable")

    async def key_for(kid: str | None, alg: str) -> ClientKey:
        return await client._jwks.key_for(jwks_uri, kid, alg)

    try:
        claims = await verify_signature(token, ("RS256",), key_for)
        check_audience(claims, client.config.audiences)
    except FederationError as exc:
        raise InvalidNotification(f"security event refused: {exc.reason}") from None
    if claims.get("iss") != issuer:
        raise InvalidNotification("the security event's iss is not Google's RISC issuer")
    events = claims.get("events")
    if not isinstance(events, dict) or not events:
        raise InvalidNotification("the security event has no events")
    jti = optional_str(claims.get("jti"))
    found = []
    for uri, event in events.items():
        event = event if isinstance(event, dict) else {}
        subject = event.get("subject")
        sub = optional_str(subject.get("sub")) if isinstance(subject, dict) and subject.get(
            "subject_type") == "iss-sub" else None
        revoked: dict[str, Any] = subject if isinstance(subject, dict) and subject.get(
            "subject_type") == "oauth_token" else {}
        found.append(RiscEvent(type=str(uri), sub=sub, reason=optional_str(event.get("reason")),
                               jti=jti, token=optional_str(revoked.get("token")),
                               token_alg=optional_str(revoked.get("token_identifier_alg"))))
    return found
