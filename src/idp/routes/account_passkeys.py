"""Passkeys in the account center (issue 12 item 5): list, add, rename and remove. Each page
comes after a recent sign-in that used the second factor when the account has one (ASVS
7.5.1, `center.confirmed_recently`; the re-authentication page otherwise); every POST carries
a CSRF token bound to this browser and the form, and succeeds with a 303."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from idp.domain import SessionInfo
from idp.services.accounts import center, passkeys
from idp.services.signin.passkeys import PasskeyRefused
from idp.services.signin.reauth import reauth_location
from idp.store.models import User
from idp.web.browser import BrowserCookies, CookiesDep
from idp.web.deps import CtxDep
from idp.web.forms import account_form, account_page, first, see_other
from idp.web.responses import allow_own_scripts

router = APIRouter(prefix="/account", tags=["Account center"], include_in_schema=False)
HERE = "/account/passkeys"
PURPOSES = ("passkey-add", "passkey-remove", "passkey-rename")


async def _recently(request: Request, ctx: CtxDep, cookies: BrowserCookies
                    ) -> tuple[User, SessionInfo] | Response:
    signed_in = await center.signed_in(ctx, cookies.session_cookie(request))
    if signed_in is None:
        return see_other("/account/login")
    if not await center.confirmed_recently(ctx, signed_in[1]):
        return see_other(reauth_location(HERE))
    return signed_in


async def _page(request: Request, ctx: CtxDep, cookies: BrowserCookies, user: User,
                message: str | None = None, done: str | None = None, confirmed: bool = True
                ) -> Response:
    """The list; the forms that change it (and a registration challenge) only after a
    recent confirmation, a link to give one otherwise."""
    browser_id, _ = cookies.ensure_browser_id(request)
    options = await passkeys.registration_options(ctx, user, browser_id) if confirmed else None
    return allow_own_scripts(account_page(request, cookies, "account_passkeys.html", {
        "passkeys": await passkeys.list_passkeys(ctx, user.id), "options": options,
        "confirm": reauth_location(HERE), "message": message, "done": done,
        "max_name": passkeys.MAX_NAME,
    }, *PURPOSES))


@router.get("/passkeys")
async def passkeys_page(request: Request, ctx: CtxDep, cookies: CookiesDep,
                        done: str | None = None) -> Response:
    signed_in = await center.signed_in(ctx, cookies.session_cookie(request))
    if signed_in is None:
        return see_other("/account/login")
    user, info = signed_in
    return await _page(request, ctx, cookies, user,
                       done=done if done in ("added", "removed", "renamed") else None,
                       confirmed=await center.confirmed_recently(ctx, info))


@router.post("/passkeys")
async def add(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    values = await account_form(request, cookies, "passkey-add")
    found = await _recently(request, ctx, cookies)
    if isinstance(found, Response):
        return found
    user, info = found
    browser_id, _ = cookies.ensure_browser_id(request)
    try:
        await passkeys.register(ctx, info, browser_id, first(values, "name"),
                                first(values, "credential"))
    except PasskeyRefused as refused:
        return await _page(request, ctx, cookies, user, refused.message)
    return see_other(f"{HERE}?done=added")


@router.post("/passkeys/rename")
async def rename(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    values = await account_form(request, cookies, "passkey-rename")
    found = await _recently(request, ctx, cookies)
    if isinstance(found, Response):
        return found
    try:
        await passkeys.rename(ctx, found[1], first(values, "passkey"), first(values, "name"))
    except PasskeyRefused as refused:
        return await _page(request, ctx, cookies, found[0], refused.message)
    return see_other(f"{HERE}?done=renamed")


@router.post("/passkeys/remove")
async def remove(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    values = await account_form(request, cookies, "passkey-remove")
    found = await _recently(request, ctx, cookies)
    if isinstance(found, Response):
        return found
    try:
        await passkeys.remove(ctx, found[1], first(values, "passkey"))
    except PasskeyRefused as refused:
        return await _page(request, ctx, cookies, found[0], refused.message)
    return see_other(f"{HERE}?done=removed")
