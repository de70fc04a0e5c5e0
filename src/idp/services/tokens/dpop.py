"""DPoP (RFC 9449) at our endpoints. The token endpoint binds what it issues to the key of a
valid proof (§5); our protected resources accept a bound access token only with a proof of
that key (§7). A proof is accepted once (§11.1: one conditional insert every replica
shares); server nonces (§8, §9) are stateless (`idp.crypto.dpop_nonces`).

A request without a `DPoP` header, from a client not required to send one, costs nothing
here: no parsing, no statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from idp import errors
from idp.crypto.dpop_nonces import DPoPNonces, nonces_for
from idp.crypto.handles import constant_time_equals
from idp.domain import ClientConfig
from idp.protocol.dpop import Expected, Proof, bound_key, check_proof
from idp.services.context import Context
from idp.store import dpop as dpop_store

# The key the tokens of the running token request are bound to, set by the token endpoint
# around the grant handler it runs (`idp.services.tokens.endpoint`), so every handler, present
# and future, issues bound tokens without knowing of DPoP: `mint_access_token` adds it as
# `cnf.jkt` and `mint_refresh_token` binds a public client's refresh token to it.
BOUND_KEY: ContextVar[str | None] = ContextVar("dpop_bound_key", default=None)

TOKEN_PATH = "/token"
PAR_PATH = "/par"


@dataclass(frozen=True)
class Presentation:
    """How a request to one of our protected resources carried its access token: the
    authorization scheme ("bearer", also for a token in a form body, or "dpop"), the request's
    `DPoP` headers, its method and the endpoint's path."""

    scheme: str = "bearer"
    proofs: tuple[str, ...] = ()
    method: str = "GET"
    path: str = ""


BEARER = Presentation()


async def bind_token_request(ctx: Context, client: ClientConfig, proofs: Sequence[str]
                             ) -> str | None:
    """RFC 9449 §5: the key a token request's tokens are bound to, None without a proof."""
    if not proofs:
        if client.dpop_bound_access_tokens:
            # §5.2: such a client's token requests without a DPoP header are refused.
            raise errors.InvalidDpopProof("This client must send a DPoP proof")
        return None
    return await _proven_key(ctx, proofs, TOKEN_PATH)


async def bind_pushed_request(ctx: Context, proofs: Sequence[str]) -> str | None:
    """RFC 9449 §10.1: the key of a pushed authorization request's proof, which the code it
    leads to is bound to (as by `dpop_jkt`); None without a proof."""
    return await _proven_key(ctx, proofs, PAR_PATH) if proofs else None


async def _proven_key(ctx: Context, proofs: Sequence[str], path: str) -> str:
    """The key of a POST's proof to `path`, checked and used up."""
    proof = verify(ctx, proofs, "POST", path, None)
    await consume(ctx, proof)
    return proof.jkt


def check_presentation(ctx: Context, presentation: Presentation, access_token: str,
                       claims: dict[str, Any]) -> Proof | None:
    """§7: what a protected resource checks before reading live state: the token's binding
    against the scheme it came with and the request's proof. The proof, still to be
    consumed, or None for a bearer token."""
    jkt = bound_key(claims)
    if presentation.scheme != "dpop":
        if jkt is not None:
            # §7.2: a DPoP-bound token is never accepted as a bearer token.
            raise errors.InvalidDpopBinding(
                "The access token is DPoP-bound: send it with the DPoP scheme and a proof")
        return None
    if jkt is None:
        raise errors.InvalidDpopBinding(
            "The access token is not DPoP-bound: send it with the Bearer scheme")
    if not presentation.proofs:
        raise errors.InvalidDpopProof("A DPoP proof is required with this access token")
    proof = verify(ctx, presentation.proofs, presentation.method, presentation.path,
                   access_token)
    if not constant_time_equals(proof.jkt, jkt):
        # §7.1 (its example): the proof is signed by another key than the token's.
        raise errors.InvalidDpopBinding("Invalid DPoP key binding")
    return proof


def verify(ctx: Context, proofs: Sequence[str], method: str, path: str,
           access_token: str | None) -> Proof:
    """§4.3 for a request to `path`, but for replay: a proof, or the error to answer."""
    settings, now = ctx.settings, ctx.now()
    # §4.3 item 9: compared with the endpoint's URL as the issuer names it, never as the
    # request's Host header does.
    proof = check_proof(proofs, Expected(
        method, settings.endpoint(path), now, settings.dpop_proof_max_age_seconds,
        settings.dpop_proof_future_seconds, access_token))
    if settings.dpop_require_nonce:
        nonces = _nonces(ctx)
        # §4.3 item 10, §8, §9: a nonce we issued recently, or a fresh one to retry with.
        if proof.nonce is None:
            raise errors.UseDpopNonce("A DPoP nonce is required: retry with the DPoP-Nonce",
                                      nonce=nonces.issue(now))
        if not nonces.accepts(proof.nonce, now):
            raise errors.UseDpopNonce("The DPoP nonce is invalid or expired: retry with the "
                                      "DPoP-Nonce", nonce=nonces.issue(now))
    return proof


async def consume(ctx: Context, proof: Proof) -> None:
    """§11.1: a proof is accepted once, by any replica, while its `iat` is in the window."""
    expires_at = proof.iat + ctx.settings.dpop_proof_max_age_seconds + 1
    async with ctx.db.statements() as connection:
        first = await dpop_store.remember_proof(connection, proof.jkt, proof.jti, expires_at)
    if not first:
        raise errors.InvalidDpopProof("The DPoP proof was already used")


def fresh_nonce(ctx: Context) -> str | None:
    """§8.2, §9: the nonce to send with an answer when nonces are required, else None."""
    return _nonces(ctx).issue(ctx.now()) if ctx.settings.dpop_require_nonce else None


def _nonces(ctx: Context) -> DPoPNonces:
    return nonces_for(ctx.settings.resolved_key_secret())
