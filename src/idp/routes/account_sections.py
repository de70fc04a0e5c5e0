"""The account center's overview and its sections (issue 15 item 7): /account sums up each
section first ("3 apps can see your data") and leads to it; /account/security (sign-in
methods, email, password, two-step sign-in, passkeys, devices), /account/apps (connected apps
and what each can see) and /account/privacy (choices across apps, consent history, download
or delete) are pages of their own. Profile is /account/profile."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from idp.services.accounts import center, linking, overview
from idp.services.consent.grants import DeliveryStatus
from idp.services.signin import reauth, sessions
from idp.services.signin.interaction import LoginFailed
from idp.web.browser import BrowserCookies, CookiesDep
from idp.web.deps import CtxDep
from idp.web.forms import account_form, account_page, first, see_other

router = APIRouter(prefix="/account", tags=["Account center"], include_in_schema=False)
SECURITY = "/account/security"


def moved_location(change: str | None, password: str | None, outcome: str | None,
                   upstream: str | None) -> str | None:
    """Where a link to the one long page of before (a change id, a password or sign-in
    method outcome in its query) now shows what it carries; None for the overview itself."""
    if outcome or upstream:
        query = {k: v for k, v in (("outcome", outcome), ("upstream", upstream)) if v}
        return f"{SECURITY}?{urlencode(query)}#sign-in"
    if password == "changed":
        return f"{SECURITY}?password=changed#password"
    if change:
        return f"/account/apps?{urlencode({'change': change})}"
    return None


@router.get("")
async def overview_page(request: Request, ctx: CtxDep, cookies: CookiesDep,
                        change: str | None = None, password: str | None = None,
                        outcome: str | None = None, upstream: str | None = None) -> Response:
    # The query picks among our own words (a change id, "changed", an outcome code); it
    # never carries words to show.
    moved = moved_location(change, password, outcome, upstream)
    if moved is not None:
        return see_other(moved)
    found = await center.signed_in(ctx, cookies.session_cookie(request))
    if found is None:
        return see_other("/account/login")
    user = found[0]
    return account_page(request, cookies, "account.html", {
        "user": user, "summary": await overview.summary(ctx, user)}, "logout")


@router.get("/security")
async def security_page(request: Request, ctx: CtxDep, cookies: CookiesDep,
                        password: str | None = None, outcome: str | None = None,
                        upstream: str | None = None) -> Response:
    return await _security(request, ctx, cookies, password_changed=password == "changed",
                           methods_message=await linking.outcome_message(ctx, outcome, upstream))


async def _security(request: Request, ctx: CtxDep, cookies: BrowserCookies, *,
                    password_changed: bool = False, methods_message: str | None = None,
                    password_message: str | None = None) -> Response:
    found = await center.signed_in(ctx, cookies.session_cookie(request))
    if found is None:
        return see_other("/account/login")
    user = found[0]
    return account_page(request, cookies, "account_security.html", {
        "user": user,
        "security": await overview.security(ctx, user),
        "password_changed": password_changed,
        "password_message": password_message,
        "methods_message": methods_message,
        "status_words": linking.STATUS_WORDS,
        "min_length": ctx.settings.password_min_length,
    }, "identities", "password", "logout")


@router.post("/password")
async def change_password(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    user, info = await center.current_user(ctx, cookies.session_cookie(request))
    values = await account_form(request, cookies, "password")
    # The current password is typed in the form; an account with a second factor gives it
    # too, through a recent confirmation (issue 12 item 7).
    if await center.has_second_factor(ctx, user.id) and \
            not await center.confirmed_recently(ctx, info):
        return see_other(reauth.reauth_location(reauth.safe_next(f"{SECURITY}#password")))
    try:
        if user.email is None:
            raise LoginFailed("This account signs in with another provider and has no password.")
        cookie = await sessions.change_password(
            ctx, user.email, first(values, "current_password"), first(values, "new_password"),
            cookies.session_cookie(request))
    except LoginFailed as failed:
        return await _security(request, ctx, cookies, password_message=failed.message)
    response = see_other(f"{SECURITY}?password=changed#password")
    cookies.set_session(response, cookie)
    return response


@router.get("/apps")
async def apps_page(request: Request, ctx: CtxDep, cookies: CookiesDep,
                    change: str | None = None) -> Response:
    found = await center.signed_in(ctx, cookies.session_cookie(request))
    if found is None:
        return see_other("/account/login")
    return account_page(request, cookies, "account_apps.html", {
        "apps": await center.connected_apps(ctx, found[0].id),
        "status": await _change_status(ctx, change)}, "logout")


@router.get("/privacy")
async def privacy_page(request: Request, ctx: CtxDep, cookies: CookiesDep,
                       change: str | None = None) -> Response:
    found = await center.signed_in(ctx, cookies.session_cookie(request))
    if found is None:
        return see_other("/account/login")
    return account_page(request, cookies, "account_privacy.html", {
        "privacy": await overview.privacy(ctx, found[0].id),
        "status": await _change_status(ctx, change)}, "apps", "logout")


async def _change_status(ctx: CtxDep, change: str | None) -> DeliveryStatus | None:
    return await center.change_status(ctx, change) if change and len(change) < 64 else None
