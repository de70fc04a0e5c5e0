"""Password authentication shared by every sign-in page: the same answer, and the same work,
whether the account exists or not (security.md §0 item 12)."""

from __future__ import annotations

from idp.errors import Throttled
from idp.observability import metrics
from idp.services.context import Context
from idp.services.signin import throttle
from idp.store import users as user_store
from idp.store.models import User


async def verify_password_login(ctx: Context, email: str, password: str) -> User | None:
    """The account, if `password` is its password; None otherwise, after the same work."""
    max_length = ctx.settings.password_max_length
    well_formed = bool(email and password) and len(password) <= max_length
    # security.md ATO-01..03: counted before the hash work; Throttled while held back. The
    # attempt is committed before the verify, which runs with no transaction open (on SQLite
    # one would hold the write lock through the hash), so parallel guesses all count.
    try:
        async with ctx.db.transaction() as session:
            attempt = await throttle.begin_attempt(ctx, session, email)
            user = await user_store.find_by_email(session, email) if well_formed else None
    except Throttled:
        metrics.SIGNINS.labels("password", "throttled").inc()
        raise
    if not well_formed:
        # Still burn one hash so an empty or oversized field answers at the usual speed.
        await ctx.passwords.verify(None, password[:max_length])
        metrics.SIGNINS.labels("password", "failure").inc()
        return None
    result = await ctx.passwords.verify(user.password_hash if user else None, password)
    # A deactivated account (federation.md §9 requirement 27) answers exactly like a wrong
    # password, after the same hash work, so the answer tells nothing about the account.
    if user is None or not result.ok or user.disabled_at is not None:
        metrics.SIGNINS.labels("password", "failure").inc()
        return None
    async with ctx.db.transaction() as session:
        await throttle.succeeded(ctx, session, attempt)
        if result.new_hash:
            await user_store.set_password_hash(session, user.id, result.new_hash, ctx.now())
    metrics.SIGNINS.labels("password", "success").inc()
    return user
