"""The account center's profile (issue 16 items 1 and 4): /account/profile shows every value
with where it came from and when, and lets the customer correct or remove what is editable;
/account/data-access shows what each app received, and when. Every POST carries the CSRF
token of the `profile` form and answers 303."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from idp.services.accounts import center
from idp.services.profile import access_log, values
from idp.services.profile.collect import Field
from idp.web.browser import BrowserCookies, CookiesDep
from idp.web.deps import CtxDep
from idp.web.forms import account_form, account_page, first, see_other
from idp.web.i18n import N_

router = APIRouter(prefix="/account", tags=["Account center"], include_in_schema=False)
STATUSES = ("saved", "removed")
WAYS = {"id_token": N_("when you signed in"), "userinfo": N_("the app asked for your details"),
        "profile_api": N_("through our profile service")}


@router.get("/profile")
async def profile_page(request: Request, ctx: CtxDep, cookies: CookiesDep,
                       status: str | None = None) -> Response:
    found = await center.signed_in(ctx, cookies.session_cookie(request))
    if found is None:
        return see_other("/account/login")
    # The query only picks one of our own messages.
    return await _profile(request, ctx, cookies, found[0].id,
                          status=status if status in STATUSES else None)


async def _profile(request: Request, ctx: CtxDep, cookies: BrowserCookies, user_id: str, *,
                   status: str | None = None, typed: dict[str, str] | None = None,
                   problems: dict[str, str] | None = None) -> Response:
    entries = await values.entries(ctx, user_id)
    editable = [Field(e.defn, (typed or {}).get(e.defn.name, e.text),
                      (problems or {}).get(e.defn.name))
                for e in entries if e.defn.customer_editable]
    context: dict[str, Any] = {
        "entries": {e.defn.name: e for e in entries}, "editable": editable,
        "held": [e for e in entries if not e.defn.customer_editable and e.value is not None],
        "status": status, "problems": problems or {}}
    return account_page(request, cookies, "account_profile.html", context, "profile",
                        "logout", status_code=400 if problems else 200)


@router.post("/profile")
async def save_profile(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    user, _ = await center.current_user(ctx, cookies.session_cookie(request))
    form = await account_form(request, cookies, "profile")
    typed = {name: first(form, name) for name in form if name != "csrf_token"}
    problems = await values.save_by_customer(ctx, user.id, typed)
    if problems:
        return await _profile(request, ctx, cookies, user.id, typed=typed, problems=problems)
    return see_other("/account/profile?status=saved")


@router.post("/profile/remove")
async def remove_value(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    user, _ = await center.current_user(ctx, cookies.session_cookie(request))
    form = await account_form(request, cookies, "profile")
    await values.remove_by_customer(ctx, user.id, first(form, "name"))
    return see_other("/account/profile?status=removed")


@router.get("/data-access")
async def data_access_page(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    found = await center.signed_in(ctx, cookies.session_cookie(request))
    if found is None:
        return see_other("/account/login")
    return account_page(request, cookies, "account_data_access.html", {
        "received": await access_log.received(ctx, found[0].id), "ways": WAYS}, "logout")
