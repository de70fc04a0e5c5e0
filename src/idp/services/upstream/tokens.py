"""The one upstream token we keep per linked identity, for revocation at the upstream when the
account is deleted (federation.md §9 requirement 31) and for matching Google RISC
`token-revoked` events (requirement 28). Sealed with Fernet under a purpose of its own; only
the RISC identifier is stored in the clear, and it is a double hash."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, replace

from idp.crypto.keys import KeyEncryptor
from idp.federation.identity import UpstreamIdentity
from idp.services.context import Context
from idp.store.models import Identity

PURPOSE = "upstream-token"
RISC_PREFIX_LENGTH = 16  # federation.md §1.7: the `prefix` identifier is the first 16 chars


@dataclass(frozen=True)
class UpstreamToken:
    token: str
    # "refresh_token" (Apple always, Google with access_type=offline) or "access_token".
    type: str
    # When we kept it: an access token lives about an hour (Google: 3599 s), so an upstream's
    # "invalid_token" for an older one means "expired", not "already revoked".
    kept_at: int | None = None

    def __repr__(self) -> str:  # never in logs
        return f"UpstreamToken(type={self.type!r})"


def _encryptor(ctx: Context) -> KeyEncryptor:
    return KeyEncryptor(ctx.settings.resolved_key_secret(), PURPOSE)


def risc_digest(token: str) -> str:
    """RISC `hash_base64_sha512_sha512`: base64 of SHA-512 of SHA-512 of the token."""
    once = hashlib.sha512(token.encode("utf-8")).digest()
    return base64.b64encode(hashlib.sha512(once).digest()).decode("ascii")


def seal(ctx: Context, token: UpstreamToken) -> tuple[str, str]:
    """(encrypted, RISC digest) for the `identities.refresh_token_*` columns."""
    return (_encryptor(ctx).encrypt({"token": token.token, "type": token.type,
                                     "kept_at": token.kept_at}),
            risc_digest(token.token))


def unseal(ctx: Context, encrypted: str) -> UpstreamToken:
    data = _encryptor(ctx).decrypt(encrypted)
    kept_at = data.get("kept_at")
    return UpstreamToken(token=str(data["token"]), type=str(data["type"]),
                         kept_at=kept_at if isinstance(kept_at, int) else None)


def _chosen(identity: UpstreamIdentity) -> UpstreamToken | None:
    """The one upstream token kept per identity, to revoke at the upstream when the account is
    deleted (federation.md §9 requirement 31, §2.8). The refresh token when the upstream gave
    one: Apple always, Google only with offline access. Without one, Google's access token is
    kept: revoking a live access token revokes the whole grant at Google, and deletion needs a
    sign-in within `recent_auth_seconds`, so the token of that login (valid an hour) is
    usually still live. When it is not, the upstream's `invalid_token` cannot say whether the
    grant is gone or the token merely expired: the sender reports that revocation as failed.
    Facebook needs none: its revocation uses our app token (DELETE /{asid}/permissions)."""
    if identity.refresh_token:
        return UpstreamToken(identity.refresh_token, "refresh_token")
    if identity.access_token:
        return UpstreamToken(identity.access_token, "access_token")
    return None


def keep(ctx: Context, linked: Identity, identity: UpstreamIdentity) -> None:
    """A newer token replaces the older one, except that an access token never replaces a
    refresh token (revoking the refresh token ends the grant for longer)."""
    token = _chosen(identity)
    if token is None:
        return
    if token.type != "refresh_token" and linked.refresh_token_encrypted is not None and \
            unseal(ctx, linked.refresh_token_encrypted).type == "refresh_token":
        return
    linked.refresh_token_encrypted, linked.refresh_token_digest = seal(
        ctx, replace(token, kept_at=ctx.now()))


def forget(linked: Identity) -> None:
    """Delete the one upstream token kept for this identity (requirements 27, 28)."""
    linked.refresh_token_encrypted = None
    linked.refresh_token_digest = None
