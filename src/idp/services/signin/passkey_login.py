"""Username-less sign-in with a passkey on an app's login page (issue 12 item 5).

The login page carries PublicKeyCredentialRequestOptions with an empty allowCredentials (the
authenticator offers its discoverable credentials: a button, and conditional mediation in the
email field's autofill); the challenge waits for this browser and this interaction. The
assertion names its account by the user handle (WebAuthn §7.2 step 6).

A passkey whose authenticator verified the user (UV) is phishing-resistant multi-factor
authentication by itself (NIST SP 800-63B §5.1.8): the session gets amr [hwk|swk, user, mfa]
and the MFA acr, and no second factor is asked. Without UV it is one factor, like a password:
an account that also has an authenticator app is then asked for its code (the passkey is not
offered a second time)."""

from __future__ import annotations

from idp.errors import Throttled
from idp.observability import metrics
from idp.services.context import Context
from idp.services.signin import throttle
from idp.services.signin.authorization import resume_in
from idp.services.signin.interaction import SignedIn, start_session
from idp.services.signin.passkeys import (
    REFUSED,
    CounterRegressed,
    PasskeyRefused,
    challenge_key,
    consume_challenge,
    parse_credential,
    record_regression,
    verify_assertion,
)
from idp.services.signin.pending import check_pending, load_interaction
from idp.services.signin.second_factor import (
    SecondFactorRequired,
    interaction_location,
    interaction_place,
    wait_for_second_factor,
)
from idp.store import factors as factor_store
from idp.store import users as user_store


def login_place(interaction_id: str) -> str:
    return f"login:{interaction_place(interaction_id)}"


def login_challenge(interaction_id: str, browser_id: str) -> str:
    """Where the login page's challenge waits: for this browser at this interaction."""
    return challenge_key(browser_id, login_place(interaction_id))


async def sign_in_with_passkey(ctx: Context, interaction_id: str, browser_id: str,
                               credential: str, previous_cookie: str | None) -> SignedIn:
    """The session and the authorization's next step; PasskeyRefused in the page's words
    (the same for an unknown credential, another account's, a removed one or a bad
    signature), Throttled, or SecondFactorRequired (a passkey without UV on an account with
    an authenticator app)."""
    try:
        async with ctx.db.atomic() as connection:
            await check_pending(ctx, connection, interaction_id, browser_id)
            attempt = await throttle.begin_passkey_attempt(ctx, connection)
    except Throttled:
        metrics.SIGNINS.labels("passkey", "throttled").inc()
        raise
    try:
        parsed = parse_credential(credential)
        challenge = await consume_challenge(
            ctx, login_challenge(interaction_id, browser_id), None)
        async with ctx.db.transaction() as session:
            interaction, client = await load_interaction(ctx, session, interaction_id,
                                                         browser_id)
            asserted = await verify_assertion(ctx, session, challenge, parsed, None)
            user_id = asserted.passkey.user_id
            user = await user_store.get_user(session, user_id)
            if user is None or user.disabled_at is not None:
                raise PasskeyRefused(REFUSED)
            await throttle.passkey_succeeded(session, attempt)
            amr = list(asserted.amr)
            waiting = not asserted.user_verified and await factor_store.has_totp(
                session, user_id)
            if waiting:
                await wait_for_second_factor(
                    ctx, session, user_id, browser_id, interaction_place(interaction_id),
                    amr, expires_at=interaction.expires_at, interaction_id=interaction_id)
            else:
                cookie, sid = await start_session(ctx, session, user_id, previous_cookie,
                                                  amr=amr)
                interaction.session_sid = sid
                await session.flush()
                outcome = await resume_in(ctx, session, interaction, client, browser_id,
                                          cookie)
    except CounterRegressed as refused:
        await record_regression(ctx, refused)
        metrics.SIGNINS.labels("passkey", "failure").inc()
        raise
    except PasskeyRefused:
        metrics.SIGNINS.labels("passkey", "failure").inc()
        raise
    metrics.SIGNINS.labels("passkey", "success").inc()
    if waiting:
        raise SecondFactorRequired(interaction_location(interaction_id))
    return SignedIn(cookie, outcome)
