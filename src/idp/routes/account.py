"""The account center's sign-in, re-authentication and the forms of its sections (the pages
themselves are routes/account_sections.py): sign-in methods, choices across apps and per
app, receipts, signing out. Server-rendered; every POST carries a CSRF token
bound to the browser."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from idp import errors
from idp.services.accounts import center, linking
from idp.services.consent import grants
from idp.services.consent.receipts import receipt
from idp.services.signin import reauth
from idp.services.signin.authentication import verify_password_login
from idp.services.signin.interaction import LOGIN_FAILED, LoginFailed
from idp.services.signin.logout import log_out
from idp.services.signin.second_factor import SecondFactorRequired
from idp.services.signin.second_step import sign_in_to_account
from idp.web.browser import EXPIRED, BrowserCookies, CookiesDep
from idp.web.deps import CtxDep
from idp.web.forms import account_form, account_page, first, see_other
from idp.web.i18n import gettext
from idp.web.responses import NO_STORE

router = APIRouter(prefix="/account", tags=["Account center"], include_in_schema=False)
SECURITY = "/account/security"


@router.get("/login")
async def login_page(request: Request, cookies: CookiesDep) -> Response:
    return _login_page(request, cookies)


def _login_page(request: Request, cookies: BrowserCookies, message: str | None = None,
                email: str = "") -> Response:
    # Nothing on this page comes from the query: a message there would be anyone's words
    # shown as ours (content spoofing).
    return account_page(request, cookies, "account_login.html",
                        {"message": message, "email": email[:320]}, "login")


@router.post("/login")
async def login(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    values = await account_form(request, cookies, "login")
    proof = await verify_password_login(ctx, first(values, "email"), first(values, "password"))
    if proof is None:
        return _login_page(request, cookies, gettext(LOGIN_FAILED), first(values, "email"))
    try:
        cookie = await sign_in_to_account(ctx, proof.user.id, _browser(request, cookies),
                                          cookies.session_cookie(request), proof.second_factor)
    except SecondFactorRequired as needed:
        return see_other(needed.location)
    response = see_other("/account")
    cookies.set_session(response, cookie)
    return response


# POST /profile: idp.routes.account_profile (issue 16: values keep their provenance).


def _reauth_path(next_path: str) -> str:
    return reauth.reauth_location(reauth.safe_next(next_path))


def _browser(request: Request, cookies: BrowserCookies) -> str:
    browser_id = cookies.browser_id(request)
    if browser_id is None:  # _form has checked the CSRF token against it already
        raise errors.InvalidRequest(EXPIRED, redirectable=False)
    return browser_id


@router.get("/reauth")
async def reauth_page(request: Request, ctx: CtxDep, cookies: CookiesDep,
                      next: str | None = None, outcome: str | None = None,
                      upstream: str | None = None) -> Response:
    """Confirm who you are before changing sign-in methods or deleting the account
    (federation.md §9 requirement 25): the password, or a connected provider."""
    return await _reauth_page(request, ctx, cookies, next,
                              await linking.outcome_message(ctx, outcome, upstream))


async def _reauth_page(request: Request, ctx: CtxDep, cookies: CookiesDep,
                       next_path: str | None, message: str | None) -> Response:
    try:
        user, _ = await center.current_user(ctx, cookies.session_cookie(request))
    except errors.LoginRequired:
        return see_other("/account/login")
    return account_page(request, cookies, "account_reauth.html", {
        "user": user,
        "methods": await linking.sign_in_methods(ctx, user),
        "next": reauth.safe_next(next_path),
        "message": message,
    }, "reauth")


@router.post("/reauth")
async def reauthenticate(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    user, _ = await center.current_user(ctx, cookies.session_cookie(request))
    values = await account_form(request, cookies, "reauth")
    next_path = reauth.safe_next(first(values, "next"))
    alias = first(values, "upstream")
    if alias:
        url = await reauth.start_reauth(ctx, alias, user, _browser(request, cookies),
                                        next_path)
        return see_other(url)
    try:
        cookie = await reauth.reauthenticate_with_password(
            ctx, user, first(values, "password"), cookies.session_cookie(request),
            _browser(request, cookies), next_path)
    except LoginFailed as failed:
        return await _reauth_page(request, ctx, cookies, next_path, failed.message)
    except SecondFactorRequired as needed:
        return see_other(needed.location)
    response = see_other(next_path)
    cookies.set_session(response, cookie)
    return response


@router.post("/identities/link")
async def link_identity(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    user, info = await center.current_user(ctx, cookies.session_cookie(request))
    values = await account_form(request, cookies, "identities")
    if not await center.confirmed_recently(ctx, info):
        return see_other(_reauth_path(SECURITY))
    url = await linking.start_link(ctx, first(values, "alias"), user.id,
                                   _browser(request, cookies))
    return see_other(url)  # RFC 9700 §4.12: 303 after a POST


@router.post("/identities/{identity_id}/remove")
async def remove_identity(identity_id: str, request: Request, ctx: CtxDep, cookies: CookiesDep
                          ) -> Response:
    _, info = await center.current_user(ctx, cookies.session_cookie(request))
    await account_form(request, cookies, "identities")
    if not await center.confirmed_recently(ctx, info):
        return see_other(_reauth_path(SECURITY))
    removal = await linking.remove_identity(ctx, info, identity_id)
    response = see_other(linking.outcome_location(SECURITY, removal.outcome, removal.alias)
                          + "#sign-in")
    if removal.session_cookie is not None:
        cookies.set_session(response, removal.session_cookie)
    return response


@router.post("/purposes/{purpose_id}")
async def change_purpose(purpose_id: str, request: Request, ctx: CtxDep, cookies: CookiesDep
                         ) -> Response:
    user, _ = await center.current_user(ctx, cookies.session_cookie(request))
    values = await account_form(request, cookies, "apps")
    decision = first(values, "decision")
    if decision not in ("allow", "stop"):
        raise errors.InvalidRequest("Choose allow or stop", redirectable=False)
    change_id = await grants.change_purpose_everywhere(ctx, user.id, purpose_id,
                                                        decision == "allow")
    return see_other(f"/account/privacy?change={change_id}")


@router.get("/apps/{client_id}")
async def app_page(client_id: str, request: Request, ctx: CtxDep, cookies: CookiesDep
                   ) -> Response:
    try:
        user, _ = await center.current_user(ctx, cookies.session_cookie(request))
    except errors.LoginRequired:
        return see_other("/account/login")
    return account_page(request, cookies, "account_app.html", {
        "app": await center.app_view(ctx, user.id, client_id)}, "apps")


@router.post("/apps/{client_id}")
async def change_app(client_id: str, request: Request, ctx: CtxDep, cookies: CookiesDep
                     ) -> Response:
    user, _ = await center.current_user(ctx, cookies.session_cookie(request))
    values = await account_form(request, cookies, "apps")
    result = await grants.change_choices(ctx, user.id, client_id, values.get("scope", []),
                                          values.get("purpose", []))
    return see_other(f"/account/apps?change={result.change_id}")


@router.post("/apps/{client_id}/disconnect")
async def disconnect_app(client_id: str, request: Request, ctx: CtxDep, cookies: CookiesDep
                         ) -> Response:
    user, _ = await center.current_user(ctx, cookies.session_cookie(request))
    await account_form(request, cookies, "apps")
    result = await grants.withdraw(ctx, user.id, client_id)
    return see_other(f"/account/apps?change={result.change_id}")


@router.get("/receipts/{entry_id}")
async def consent_receipt(entry_id: str, request: Request, ctx: CtxDep, cookies: CookiesDep
                          ) -> Response:
    user, _ = await center.current_user(ctx, cookies.session_cookie(request))
    entry = await center.own_ledger_entry(ctx, user.id, entry_id)
    return JSONResponse(receipt(ctx, entry), headers={
        **NO_STORE, "Content-Disposition": f'attachment; filename="consent-{entry_id}.json"'})


@router.post("/logout")
async def account_logout(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    await account_form(request, cookies, "logout")
    await log_out(ctx, cookies.session_cookie(request))
    response = see_other("/account/login")
    cookies.clear_session(response)
    return response
