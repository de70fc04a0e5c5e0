"""The customer's language (issue 15 item 2): what an authorization request asked for, what
the account picked, and the customer's pick from the language switcher."""

from __future__ import annotations

from idp.crypto.handles import digest
from idp.services.context import Context
from idp.store import interactions as interaction_store
from idp.store import languages as language_store
from idp.store import sessions as session_store


async def requested_languages(ctx: Context, interaction_id: str) -> list[str]:
    """The `ui_locales` of a pending authorization request, best first."""
    async with ctx.db.statements() as connection:
        return await language_store.interaction_ui_locales(connection, interaction_id,
                                                           ctx.now())


async def account_language(ctx: Context, session_cookie: str) -> str | None:
    """The language the signed-in account picked, if it picked one."""
    async with ctx.db.statements() as connection:
        return await language_store.session_user_locale(connection, digest(session_cookie),
                                                        ctx.now())


async def pick_language(ctx: Context, locale: str, *, session_cookie: str | None,
                        browser_id: str | None, interaction_id: str | None,
                        on_account: bool) -> None:
    """The customer picked `locale` on a page. In a sign-in flow of this browser it replaces
    the app's `ui_locales` for the rest of the flow (the customer's own choice wins over an
    app's hint); with `on_account`, a signed-in account keeps it for its pages and mails."""
    if interaction_id is None and not (on_account and session_cookie):
        return
    async with ctx.db.transaction() as session:
        if interaction_id is not None and browser_id is not None:
            interaction = await interaction_store.get_interaction(session, interaction_id,
                                                                  ctx.now())
            if interaction is not None and interaction.browser_hash == digest(browser_id):
                interaction.request = {**interaction.request, "ui_locales": [locale]}
        if on_account and session_cookie:
            live = await session_store.find_live_session(session, digest(session_cookie),
                                                         ctx.now())
            if live is not None:
                await language_store.set_user_locale(session, live.user_id, locale)
