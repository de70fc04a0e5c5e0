"""Changing the account's address (issue 12 item 4): a form after a recent sign-in, then
pages behind the mailed links that confirm or undo with a button, never on the link alone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from fastapi import APIRouter, Request
from starlette.responses import Response

from idp.services.accounts import center, email_change
from idp.services.accounts.recovery import LinkInvalid
from idp.store.models import User
from idp.web.browser import BrowserCookies, CookiesDep
from idp.web.deps import CtxDep
from idp.web.forms import account_form, account_page, first, see_other

router = APIRouter(prefix="/account", tags=["Account center"], include_in_schema=False)
REAUTH = "/account/reauth?next=/account/email"
TEMPLATE = "account_email.html"


def _page(request: Request, cookies: BrowserCookies, purpose: str | None = None,
          status_code: int = 200, **context: object) -> Response:
    return _render(request, cookies, context, purpose, status_code)


def _render(request: Request, cookies: BrowserCookies, context: dict[str, object],
            purpose: str | None = None, status_code: int = 200) -> Response:
    purposes = (purpose,) if purpose else ()
    return account_page(request, cookies, TEMPLATE, context, *purposes,
                        status_code=status_code)


async def _signed_in_recently(request: Request, ctx: CtxDep, cookies: BrowserCookies
                              ) -> User | Response:
    signed_in = await center.signed_in(ctx, cookies.session_cookie(request))
    if signed_in is None:
        return see_other("/account/login")
    user, info = signed_in
    # An unlocked browser is not enough to move the account elsewhere (ATO).
    if not await center.confirmed_recently(ctx, info):
        return see_other(REAUTH)
    return user


@router.get("/email")
async def email_page(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    user = await _signed_in_recently(request, ctx, cookies)
    if isinstance(user, Response):
        return user
    return _page(request, cookies, "email", user=user)


@router.post("/email")
async def change_email(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    values = await account_form(request, cookies, "email")
    user = await _signed_in_recently(request, ctx, cookies)
    if isinstance(user, Response):
        return user
    try:
        new = await email_change.request_change(ctx, user, first(values, "email"))
    except email_change.ChangeRefused as refused:
        return _page(request, cookies, "email", 400, user=user, message=refused.message)
    return _page(request, cookies, sent=True, new=new)


async def _link_page(request: Request, ctx: CtxDep, cookies: BrowserCookies, purpose: str,
                     token: str, step: str, shown: str) -> Response:
    """The page behind a mailed link: what pressing its button would do, or why the link no
    longer works. Nothing is used up here."""
    detail = await email_change.pending(ctx, purpose, token)
    if detail is None:
        return _page(request, cookies, status_code=400, invalid=True)
    return _render(request, cookies, {"token": token, step: True, shown: detail.get("email")},
                   f"email-{step}")


async def _press(request: Request, cookies: BrowserCookies, step: str,
                 action: Callable[[str], Awaitable[str]], done: str, shown: str
                 ) -> tuple[Response, bool]:
    """The button behind a mailed link pressed: the outcome's page, and whether it took."""
    values = await account_form(request, cookies, f"email-{step}")
    try:
        address = await action(first(values, "token"))
    except LinkInvalid:
        return _page(request, cookies, status_code=400, invalid=True), False
    except email_change.ChangeRefused as refused:
        return _page(request, cookies, status_code=409, invalid=True,
                     message=refused.message), False
    return _render(request, cookies, {done: True, shown: address}), True


@router.get("/email/confirm")
async def confirm_page(request: Request, ctx: CtxDep, cookies: CookiesDep, token: str = ""
                       ) -> Response:
    return await _link_page(request, ctx, cookies, email_change.CONFIRM, token, "confirm",
                            "new")


@router.post("/email/confirm")
async def confirm(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    response, _ = await _press(request, cookies, "confirm",
                               partial(email_change.confirm_change, ctx), "done", "new")
    return response


@router.get("/email/undo")
async def undo_page(request: Request, ctx: CtxDep, cookies: CookiesDep, token: str = ""
                    ) -> Response:
    return await _link_page(request, ctx, cookies, email_change.UNDO, token, "undo", "old")


@router.post("/email/undo")
async def undo(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    response, undone = await _press(request, cookies, "undo",
                                    partial(email_change.undo_change, ctx), "undone", "old")
    if undone:
        # Everyone was signed out of the account, this browser included.
        cookies.clear_session(response)
    return response
