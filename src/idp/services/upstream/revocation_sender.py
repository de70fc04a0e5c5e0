"""Revoking our access at an upstream provider when a customer's identity goes (federation.md
§9 requirement 31: account deletion; PRIV-08: an identity unlinked): written to the outbox in
the caller's unit of work, sent by the dispatcher with retries, failures reported by
`idp outbox failed`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from idp.federation.errors import InvalidUpstreamToken, TokenRequestFailed, UpstreamUnavailable
from idp.federation.facebook import FacebookUpstream
from idp.notifications.outbox import enqueue
from idp.notifications.senders import Outcome
from idp.services.context import Context
from idp.services.upstream.identities import DEAD
from idp.services.upstream.providers import upstream_client
from idp.services.upstream.tokens import unseal
from idp.store import federation as federation_store
from idp.store.models import Identity, OutboxMessage

# The dispatcher's logger: outbox delivery is one stream for operators.
log = logging.getLogger("idp.notifications")

UPSTREAM_REVOKE = "upstream_revoke"
UPSTREAM_TARGET = "upstream:"  # target_url of an upstream message: the alias follows
# RFC 7009 §2.2 / RFC 6749 §5.2 answers meaning the token is dead already: nothing to revoke.
ALREADY_INVALID = frozenset({"invalid_token", "invalid_grant"})
# An access token kept longer than this has expired at the upstream (Google's live 3599 s):
# "invalid_token" for it says nothing about the grant, which may well live on.
ACCESS_TOKEN_LIFETIME_SECONDS = 3600
# Answers that will not change by asking again.
REFUSED = frozenset({"invalid_request", "unsupported_token_type"})


async def enqueue_upstream_revocations(session: AsyncSession, identities: list[Identity],
                                        now: int) -> int:
    """Requirement 31. The upstream's type is read now so the message says what it was; the
    dispatcher resolves the alias again at delivery (an upstream removed since is reported)."""
    count = 0
    for identity in identities:
        if identity.status == DEAD:
            continue  # Apple `account-delete`: the subject no longer exists upstream
        upstream = await federation_store.get_upstream(session, identity.alias)
        kind = upstream.type if upstream is not None else "unknown"
        if kind == "facebook":
            # §3: Facebook revokes with our app token; the ASID is the identity's subject.
            enqueue_upstream_revoke(session, identity.alias, kind, now, asid=identity.subject)
        elif identity.refresh_token_encrypted is not None:
            enqueue_upstream_revoke(session, identity.alias, kind, now,
                                    sealed_token=identity.refresh_token_encrypted)
        else:
            # §2.8: nothing to revoke with; the data goes, the customer may revoke upstream.
            log.info("no upstream token kept for a %s identity; nothing to revoke", kind)
            continue
        count += 1
    return count


def enqueue_upstream_revoke(session: AsyncSession, alias: str, upstream_type: str,
                            now: int, *, sealed_token: str | None = None,
                            asid: str | None = None) -> str:
    """The sealed token (`upstream_tokens.seal`, never the clear token), or the Facebook
    app-scoped user id. Addressed to no app; the alias picks the upstream at delivery, so a
    changed endpoint or secret is used as configured then."""
    payload: dict[str, Any] = {"alias": alias, "type": upstream_type}
    if sealed_token is not None:
        payload["sealed_token"] = sealed_token
    if asid is not None:
        payload["asid"] = asid
    return enqueue(session, UPSTREAM_REVOKE, None, f"{UPSTREAM_TARGET}{alias}", payload, now)


@dataclass(frozen=True)
class UpstreamRevocationSender:
    ctx: Context

    async def send(self, message: OutboxMessage) -> Outcome:
        """Apple `/auth/revoke` or Google `/revoke` (RFC 7009) with the kept token, Facebook
        `DELETE /{asid}/permissions` with our app token. An upstream that is no longer
        configured cannot be asked: abandoned, and reported."""
        payload = message.payload
        alias = str(payload.get("alias", ""))
        client = await upstream_client(self.ctx, alias)
        if client is None:
            return Outcome(False, False, None, "upstream no longer configured")
        expired = False
        try:
            if payload.get("asid") is not None:
                if not isinstance(client, FacebookUpstream):
                    return Outcome(False, False, None, "upstream is no longer Facebook")
                await client.revoke_permissions(str(payload["asid"]))
            else:
                if (await client.metadata()).revocation_endpoint is None:
                    return Outcome(False, False, None, "upstream has no revocation endpoint")
                token = unseal(self.ctx, str(payload["sealed_token"]))
                expired = (token.type == "access_token" and token.kept_at is not None
                           and self.ctx.now() - token.kept_at >= ACCESS_TOKEN_LIFETIME_SECONDS)
                await client.revoke(token.token, token.type)
        except TokenRequestFailed as exc:
            log.warning("upstream revocation at %s refused: %s", alias, exc.error)
            if exc.error in ALREADY_INVALID and expired:
                # Requirement 31: reported, not retried (asking again cannot help).
                return Outcome(False, False, None,
                               f"kept access token had expired ({exc.error}); the grant at "
                               "the provider was not revoked")
            if exc.error in ALREADY_INVALID:
                return Outcome(True, False, None, f"already invalid ({exc.error})")
            return Outcome(False, exc.error not in REFUSED, None, exc.error)
        except (UpstreamUnavailable, InvalidUpstreamToken, ValueError) as exc:
            # Messages are fixed phrases without tokens (federation/errors.py).
            reason = exc.reason if isinstance(exc, UpstreamUnavailable | InvalidUpstreamToken) \
                else "invalid app-scoped user id"
            log.warning("upstream revocation at %s failed: %s", alias, reason)
            return Outcome(False, isinstance(exc, UpstreamUnavailable), None, reason[:200])
        return Outcome(True, False, None, None)

    def finished_payload(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        # PRIV-01: delivered or given up, the sealed token or the deleted customer's ASID is
        # of no further use; the alias, type and attempts stay for the report.
        return {k: payload.get(k) for k in ("alias", "type")}
