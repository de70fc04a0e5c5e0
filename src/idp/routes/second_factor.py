"""The second-factor pages of a sign-in (issue 12 item 6): after a right first factor, in an
app's authorization (/interaction/{id}/otp), at the account center's sign-in
(/account/login/otp) and at its re-authentication (/account/reauth/otp). A code of the
authenticator app or a recovery code; every POST carries a CSRF token bound to this browser
and to the place, and a right code answers 303 (RFC 9700 §4.12)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from idp import errors
from idp.routes.authorize import respond
from idp.services.accounts import center
from idp.services.context import Context
from idp.services.signin.authorization import resume_authorization
from idp.services.signin.reauth import reauth_location
from idp.services.signin.second_factor import (
    ACCOUNT,
    REAUTH,
    CodeRefused,
    interaction_place,
    pending_sign_in,
)
from idp.services.signin.second_step import (
    SecondFactor,
    complete_account_sign_in,
    complete_in_interaction,
    complete_reauthentication,
    interaction_client_name,
    second_factor_offer,
)
from idp.web.browser import BrowserCookies, CookiesDep
from idp.web.deps import CtxDep, read_form
from idp.web.forms import account_form, account_page, first, see_other
from idp.web.i18n import N_, gettext
from idp.web.responses import allow_own_scripts, page

router = APIRouter(tags=["Pages"], include_in_schema=False)

STALE = N_("This sign-in request has expired or belongs to another browser. Return to the "
           "app.")
TEMPLATE = "otp.html"


def _browser(request: Request, cookies: BrowserCookies) -> str:
    browser_id = cookies.browser_id(request)
    if browser_id is None:
        raise errors.InvalidRequest(STALE, redirectable=False)
    return browser_id


def _mode(recovery: str | None) -> dict[str, Any]:
    # "Use a recovery code" switches the field to letters (no numeric keypad), no JavaScript.
    return {"recovery": recovery == "1"}


def _given(values: dict[str, Any]) -> SecondFactor:
    return SecondFactor(code=str(values.get("code") or ""),
                        credential=str(values.get("credential") or ""))


async def _offered(ctx: Context, browser_id: str, place: str) -> dict[str, Any]:
    """What the page offers: the app's code when the account has one, and "Use your passkey"
    (its own credentials, a fresh challenge for this browser and place) when it has one."""
    offer = await second_factor_offer(ctx, browser_id, place)
    return {"totp": offer.totp, "passkey_options": offer.passkey_options}


def _with_scripts(response: Response, context: dict[str, Any]) -> Response:
    return allow_own_scripts(response) if context.get("passkey_options") else response


# -- In an app's authorization ---------------------------------------------------------------


async def _interaction_page(request: Request, ctx: Context, cookies: BrowserCookies,
                            interaction_id: str, browser_id: str, recovery: bool,
                            message: str | None = None) -> Response:
    offered = await _offered(ctx, browser_id, interaction_place(interaction_id))
    return _with_scripts(page(request, TEMPLATE, {**offered,
        "heading": gettext("Sign in to continue to %(app)s",
                           app=await interaction_client_name(ctx, interaction_id, browser_id)),
        "action": f"/interaction/{interaction_id}/otp",
        "csrf_token": cookies.csrf_token(browser_id, f"otp:{interaction_id}"),
        "cancel_action": f"/interaction/{interaction_id}/cancel",
        "cancel_token": cookies.csrf_token(browser_id, f"cancel:{interaction_id}"),
        "message": message, "recovery": recovery,
    }), offered)


@router.get("/interaction/{interaction_id}/otp")
async def interaction_page(interaction_id: str, request: Request, ctx: CtxDep,
                           cookies: CookiesDep, recovery: str | None = None) -> Response:
    browser_id = _browser(request, cookies)
    if await pending_sign_in(ctx, browser_id, interaction_place(interaction_id)) is None:
        return see_other(f"/interaction/{interaction_id}/login")
    return await _interaction_page(request, ctx, cookies, interaction_id, browser_id,
                                   **_mode(recovery))


@router.post("/interaction/{interaction_id}/otp")
async def interaction_code(interaction_id: str, request: Request, ctx: CtxDep,
                           cookies: CookiesDep) -> Response:
    _browser(request, cookies)
    form = dict(await read_form(request))
    browser_id = cookies.check_form(request, f"otp:{interaction_id}", form.get("csrf_token"))
    try:
        signed_in = await complete_in_interaction(ctx, interaction_id, browser_id,
                                                  _given(form),
                                                  cookies.session_cookie(request))
    except CodeRefused as refused:
        return await _interaction_page(request, ctx, cookies, interaction_id, browser_id,
                                       form.get("mode") == "recovery", refused.message)
    if signed_in is None:
        return see_other(f"/interaction/{interaction_id}/login")
    outcome = signed_in.outcome or await resume_authorization(
        ctx, interaction_id, browser_id, signed_in.cookie)
    response = respond(request, outcome)
    cookies.set_session(response, signed_in.cookie)
    return response


@router.get("/interaction/{interaction_id}/two-step-required")
async def two_step_required(interaction_id: str, request: Request, ctx: CtxDep,
                            cookies: CookiesDep) -> Response:
    """The app requires a second factor the account does not have (issue 12 item 7): how to
    set one up and come back (the authorization then asks for its code), or cancel, which
    tells the app access_denied."""
    browser_id = _browser(request, cookies)
    return page(request, "two_step_required.html", {
        "client_name": await interaction_client_name(ctx, interaction_id, browser_id),
        "continue_action": f"/interaction/{interaction_id}",
        "cancel_action": f"/interaction/{interaction_id}/cancel",
        "cancel_token": cookies.csrf_token(browser_id, f"cancel:{interaction_id}"),
    })


# -- The account center ------------------------------------------------------------------------


async def _account_page(request: Request, ctx: Context, cookies: BrowserCookies, action: str,
                        purpose: str, recovery: bool, message: str | None = None
                        ) -> Response:
    browser_id = _browser(request, cookies)
    offered = await _offered(ctx, browser_id, ACCOUNT if purpose == "login-otp" else REAUTH)
    return _with_scripts(account_page(request, cookies, TEMPLATE, {
        **offered,
        "heading": gettext("Sign in to your account") if purpose == "login-otp"
        else gettext("Confirm it is you"),
        "action": action, "message": message, "recovery": recovery,
        "back": "/account/login" if purpose == "login-otp" else "/account"}, purpose), offered)


@router.get("/account/login/otp")
async def account_login_page(request: Request, ctx: CtxDep, cookies: CookiesDep,
                             recovery: str | None = None) -> Response:
    browser_id = cookies.browser_id(request)
    if browser_id is None or await pending_sign_in(ctx, browser_id, ACCOUNT) is None:
        return see_other("/account/login")
    return await _account_page(request, ctx, cookies, "/account/login/otp", "login-otp",
                               **_mode(recovery))


@router.post("/account/login/otp")
async def account_login_code(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    values = await account_form(request, cookies, "login-otp")
    try:
        cookie = await complete_account_sign_in(ctx, _browser(request, cookies),
                                                _given({k: first(values, k)
                                                        for k in ("code", "credential")}),
                                                cookies.session_cookie(request))
    except CodeRefused as refused:
        return await _account_page(request, ctx, cookies, "/account/login/otp", "login-otp",
                                   first(values, "mode") == "recovery", refused.message)
    if cookie is None:
        return see_other("/account/login")
    response = see_other("/account")
    cookies.set_session(response, cookie)
    return response


@router.get("/account/reauth/otp")
async def reauth_page(request: Request, ctx: CtxDep, cookies: CookiesDep,
                      recovery: str | None = None) -> Response:
    signed_in = await center.signed_in(ctx, cookies.session_cookie(request))
    if signed_in is None:
        return see_other("/account/login")
    browser_id = cookies.browser_id(request)
    pending = await pending_sign_in(ctx, browser_id, REAUTH) if browser_id else None
    if pending is None or pending.user_id != signed_in[0].id:
        return see_other(reauth_location("/account"))
    return await _account_page(request, ctx, cookies, "/account/reauth/otp", "reauth-otp",
                               **_mode(recovery))


@router.post("/account/reauth/otp")
async def reauth_code(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    _, info = await center.current_user(ctx, cookies.session_cookie(request))
    values = await account_form(request, cookies, "reauth-otp")
    try:
        done = await complete_reauthentication(ctx, info, _browser(request, cookies),
                                               _given({k: first(values, k)
                                                       for k in ("code", "credential")}),
                                               cookies.session_cookie(request))
    except CodeRefused as refused:
        return await _account_page(request, ctx, cookies, "/account/reauth/otp",
                                   "reauth-otp", first(values, "mode") == "recovery",
                                   refused.message)
    if done is None:
        return see_other(reauth_location("/account"))
    response = see_other(done.next_path)
    cookies.set_session(response, done.cookie)
    return response
