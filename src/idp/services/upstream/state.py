"""The state of an upstream round trip (federation.md §9 requirements 2-4 and 25).

Each round trip leaves one state row: the transaction (nonce, PKCE verifier) sealed, single use,
at most ten minutes old, bound to the browser that began it and to what it is for: a brand
app's interaction (a sign-in) or the signed-in account (the account center). The upstream's
one callback path claims it once, whatever it is for; its purpose says who completes it.
"""

from __future__ import annotations

import hmac
from dataclasses import asdict

from idp import errors
from idp.crypto.handles import digest
from idp.crypto.keys import KeyEncryptor
from idp.federation.base import Transaction
from idp.locales import N_
from idp.services.context import Context
from idp.services.upstream.providers import upstream_client
from idp.store import federation as store
from idp.store.models import FederationState

LOGIN = "login"  # a sign-in inside a brand app's pending authorization
ACCOUNT_LINK = "acctlink"  # connecting a provider from the account center
REAUTH = "reauth"  # confirming who you are with a connected provider
LINK = "link"  # an identity waiting for the password of the account it is to join
STATE_TTL = 600  # requirement 3: at most 10 minutes
EXPIRED = N_("This sign-in attempt expired, was already used, or began in another browser. "
             "Return to the app and start again.")


def state_encryptor(ctx: Context) -> KeyEncryptor:
    """Seals what an upstream round trip or a pending link carries (nonce, PKCE verifier)."""
    return KeyEncryptor(ctx.settings.resolved_key_secret(), "federation-state")


def callback_uri(ctx: Context, alias: str) -> str:
    # Requirement 2 / RFC 9700 §4.4: one callback path per upstream (mix-up defence).
    return f"{ctx.settings.issuer}/federation/{alias}/callback"


def same_browser(row: FederationState, browser_id: str) -> bool:
    """Requirement 4: the callback arrives in the browser that began the round trip."""
    return hmac.compare_digest(digest(browser_id), row.browser_hash)


async def save_state(ctx: Context, transaction: Transaction, purpose: str, alias: str,
                     browser_id: str, *, interaction_id: str | None = None,
                     user_id: str | None = None, next_path: str | None = None) -> None:
    sealed = asdict(transaction) if next_path is None else {**asdict(transaction),
                                                            "next": next_path}
    now = ctx.now()
    async with ctx.db.transaction() as session:
        session.add(FederationState(
            state_hash=digest(transaction.state), purpose=purpose, alias=alias,
            browser_hash=digest(browser_id), interaction_id=interaction_id, user_id=user_id,
            transaction_encrypted=state_encryptor(ctx).encrypt(sealed),
            created_at=now, expires_at=now + STATE_TTL, used_at=None))


async def start_round_trip(ctx: Context, purpose: str, alias: str, user_id: str,
                           browser_id: str, next_path: str) -> str:
    """The upstream authorization URL of an account-center round trip (connect or
    re-authenticate), its state bound to this browser and this account (requirement 25); no
    interaction: the brand apps have no part in this."""
    client = await upstream_client(ctx, alias)
    if client is None:
        raise errors.InvalidRequest(N_("This sign-in provider is not available"),
                                    redirectable=False)
    # A live upstream session must not stand in for the person at this browser: the upstream
    # is asked to authenticate again (prompt=login, max_age=0, or Facebook's
    # auth_type=reauthenticate), and the transaction, sealed with its start time, makes the
    # callback refuse an ID token whose auth_time predates this round trip. For a link too:
    # otherwise whatever account the upstream is signed in to gets connected.
    start = await client.start(callback_uri(ctx, alias), reauthenticate=True)
    await save_state(ctx, start.transaction, purpose, alias, browser_id, user_id=user_id,
                     next_path=next_path)
    return start.url


async def claim_callback_state(ctx: Context, params: list[tuple[str, str]]) -> FederationState:
    """The state of an upstream callback, used up now, in one write, whatever it was for."""
    states = [v for k, v in params if k == "state"]
    if len(states) != 1 or not states[0] or len(states[0]) > 256:
        raise errors.InvalidRequest(N_("The sign-in response is not valid"),
                                    redirectable=False)
    async with ctx.db.transaction() as session:
        row = await store.claim_state(session, digest(states[0]), (LOGIN, ACCOUNT_LINK, REAUTH),
                                      ctx.now())
    if row is None:
        raise errors.InvalidRequest(EXPIRED, redirectable=False)
    return row


def open_transaction(ctx: Context, row: FederationState) -> tuple[Transaction, str | None]:
    """The sealed upstream transaction, and where an account-center round trip returns to."""
    data = state_encryptor(ctx).decrypt(row.transaction_encrypted)
    next_path = data.pop("next", None)
    return Transaction(**{**data, "scopes": tuple(data["scopes"])}), next_path
