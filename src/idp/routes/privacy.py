"""The public "Do Not Sell or Share My Personal Information" page (issue 16 item 5; Cal. Civ.
Code §1798.135(a)(1)), reachable without signing in: it explains the right and signs the
customer in, then lands on the choice in the account center, where one POST with its CSRF
token sets it.

A Global Privacy Control signal from a browser that is not signed in names nobody: nothing
is stored about the browser or the person; the signal is counted (`idp_gpc_signals`), and
the page says it takes effect for the account at the next sign-in, where every signed-in
request with the signal opts the account out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from idp import errors
from idp.observability import metrics
from idp.routes.account_privacy_choices import PAGE, VIA_DO_NOT_SELL
from idp.routes.interaction import sends_gpc
from idp.services.accounts import center
from idp.services.signin.authentication import verify_password_login
from idp.services.signin.interaction import LOGIN_FAILED
from idp.services.signin.second_factor import SecondFactorRequired
from idp.services.signin.second_step import sign_in_to_account
from idp.web.browser import BrowserCookies, CookiesDep
from idp.web.deps import CtxDep
from idp.web.forms import account_form, account_page, first, see_other
from idp.web.i18n import gettext

router = APIRouter(prefix="/privacy", tags=["Pages"], include_in_schema=False)
CHOICE = f"{PAGE}?via={VIA_DO_NOT_SELL}"


@router.get("/do-not-sell")
async def do_not_sell_page(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    if await center.signed_in(ctx, cookies.session_cookie(request)) is not None:
        return see_other(CHOICE)
    if sends_gpc(request):
        metrics.GPC_SIGNALS.labels("signed_out").inc()
    return _page(request, cookies)


def _page(request: Request, cookies: BrowserCookies, message: str | None = None,
          email: str = "") -> Response:
    return account_page(request, cookies, "privacy_do_not_sell.html", {
        "gpc": sends_gpc(request), "message": message, "email": email[:320]}, "dns-login")


@router.post("/do-not-sell/sign-in")
async def sign_in(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    """The account center's password sign-in, landing on the choice."""
    values = await account_form(request, cookies, "dns-login")
    proof = await verify_password_login(ctx, first(values, "email"), first(values, "password"))
    if proof is None:
        return _page(request, cookies, gettext(LOGIN_FAILED), first(values, "email"))
    browser_id = cookies.browser_id(request)
    if browser_id is None:  # account_form checked the CSRF token against it already
        raise errors.InvalidRequest("The form has expired. Go back and try again.",
                                    redirectable=False)
    try:
        cookie = await sign_in_to_account(ctx, proof.user.id, browser_id,
                                          cookies.session_cookie(request), proof.second_factor)
    except SecondFactorRequired as needed:
        return see_other(needed.location)
    response = see_other(CHOICE)
    cookies.set_session(response, cookie)
    return response
