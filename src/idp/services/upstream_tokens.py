"""The one upstream token we keep per linked identity, for revocation at the upstream when the
account is deleted (federation.md §9 requirement 31) and for matching Google RISC
`token-revoked` events (requirement 28). Sealed with Fernet under a purpose of its own; only
the RISC identifier is stored in the clear, and it is a double hash."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from idp.crypto.keys import KeyEncryptor
from idp.services.context import Context

PURPOSE = "upstream-token"
RISC_PREFIX_LENGTH = 16  # federation.md §1.7: the `prefix` identifier is the first 16 chars


@dataclass(frozen=True)
class UpstreamToken:
    token: str
    # "refresh_token" (Apple always, Google with access_type=offline) or "access_token".
    type: str

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
    return (_encryptor(ctx).encrypt({"token": token.token, "type": token.type}),
            risc_digest(token.token))


def unseal(ctx: Context, encrypted: str) -> UpstreamToken:
    data = _encryptor(ctx).decrypt(encrypted)
    return UpstreamToken(token=str(data["token"]), type=str(data["type"]))
