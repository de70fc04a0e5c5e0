"""Two-step sign-in in the account center (issue 12 item 6): set up an authenticator app,
get new recovery codes, turn it off. Each page comes after a recent sign-in (ASVS 7.5.1,
the re-authentication page otherwise, which asks for the second factor too); every POST
carries a CSRF token bound to this browser and the form."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from idp.domain import SessionInfo
from idp.services.accounts import center, two_step
from idp.services.signin.reauth import reauth_location
from idp.services.signin.second_factor import CodeRefused
from idp.store.models import User
from idp.web.browser import BrowserCookies, CookiesDep
from idp.web.deps import CtxDep
from idp.web.forms import account_form, account_page, first, see_other

router = APIRouter(prefix="/account", tags=["Account center"], include_in_schema=False)
SETUP = "/account/totp"
CODES = "/account/recovery-codes"
REMOVE = "/account/totp/remove"
BACK = "/account/security#two-step"


async def _recently(request: Request, ctx: CtxDep, cookies: BrowserCookies, here: str,
                    enabled: bool) -> tuple[User, SessionInfo] | Response:
    """The signed-in account when its sign-in is recent and two-step sign-in is `enabled`
    (on for renewing or removing, off for setting up); otherwise where to go instead."""
    signed_in = await center.signed_in(ctx, cookies.session_cookie(request))
    if signed_in is None:
        return see_other("/account/login")
    user, info = signed_in
    if (await two_step.status(ctx, user.id)).enabled != enabled:
        return see_other(BACK)
    if not await center.confirmed_recently(ctx, info):
        return see_other(reauth_location(here))
    return signed_in


def _setup_page(request: Request, cookies: BrowserCookies, enrolment: two_step.Enrolment,
                message: str | None = None) -> Response:
    return account_page(request, cookies, "account_totp.html",
                        {"enrolment": enrolment, "message": message}, "totp")


@router.get("/totp")
async def setup_page(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    found = await _recently(request, ctx, cookies, SETUP, enabled=False)
    if isinstance(found, Response):
        return found
    return _setup_page(request, cookies, two_step.start_enrolment(ctx, found[0]))


@router.post("/totp")
async def confirm_setup(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    values = await account_form(request, cookies, "totp")
    found = await _recently(request, ctx, cookies, SETUP, enabled=False)
    if isinstance(found, Response):
        return found
    user, info = found
    sealed = first(values, "setup")
    try:
        codes = await two_step.confirm_enrolment(ctx, info, sealed, first(values, "code"))
    except two_step.TwoStepRefused as refused:
        return _setup_page(request, cookies, two_step.reopen_enrolment(ctx, user, sealed),
                           refused.message)
    return _codes_page(request, cookies, codes, enabled_now=True)


def _codes_page(request: Request, cookies: BrowserCookies, codes: list[str] | None,
                enabled_now: bool = False) -> Response:
    # Shown once, in the answer to the POST that made them: never stored, never a redirect.
    return account_page(request, cookies, "account_recovery_codes.html",
                        {"codes": codes, "enabled_now": enabled_now}, "recovery-codes")


@router.get("/recovery-codes")
async def codes_page(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    found = await _recently(request, ctx, cookies, CODES, enabled=True)
    if isinstance(found, Response):
        return found
    return _codes_page(request, cookies, None)


@router.post("/recovery-codes")
async def new_codes(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    await account_form(request, cookies, "recovery-codes")
    found = await _recently(request, ctx, cookies, CODES, enabled=True)
    if isinstance(found, Response):
        return found
    return _codes_page(request, cookies,
                       await two_step.regenerate_recovery_codes(ctx, found[0].id))


def _remove_page(request: Request, cookies: BrowserCookies, message: str | None = None
                 ) -> Response:
    return account_page(request, cookies, "account_totp_remove.html", {"message": message},
                        "totp-remove")


@router.get("/totp/remove")
async def remove_page(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    found = await _recently(request, ctx, cookies, REMOVE, enabled=True)
    if isinstance(found, Response):
        return found
    return _remove_page(request, cookies)


@router.post("/totp/remove")
async def remove(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    values = await account_form(request, cookies, "totp-remove")
    found = await _recently(request, ctx, cookies, REMOVE, enabled=True)
    if isinstance(found, Response):
        return found
    try:
        await two_step.remove_totp(ctx, found[1], first(values, "code"))
    except CodeRefused as refused:
        return _remove_page(request, cookies, refused.message)
    return see_other(BACK)
