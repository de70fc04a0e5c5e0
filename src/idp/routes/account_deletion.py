"""Deleting the account from the account center (GDPR Art. 17; federation.md §9 requirement
31): a page that says what will happen, and a form that needs a recent sign-in, the CSRF token
and a typed confirmation (the account's email address or the word DELETE)."""

from __future__ import annotations

import contextlib
import hmac

from fastapi import APIRouter, Request
from starlette.responses import Response

from idp.services.accounts import center, erasure
from idp.store.models import User
from idp.store.users import normalize_email
from idp.web.browser import BrowserCookies, CookiesDep
from idp.web.deps import CtxDep
from idp.web.forms import account_form, account_page, first, see_other
from idp.web.responses import page

router = APIRouter(prefix="/account", tags=["Account center"], include_in_schema=False)
CONFIRMATION_WORD = "DELETE"
REAUTH = "/account/reauth?next=/account/delete"


def confirmed(user: User, typed: str) -> bool:
    """The customer typed DELETE (any case) or the account's own email address."""
    typed = typed.strip()
    if typed.upper() == CONFIRMATION_WORD:
        return True
    return user.email is not None and hmac.compare_digest(
        normalize_email(typed).encode(), user.email.encode())


async def _deletion_page(request: Request, ctx: CtxDep, cookies: BrowserCookies, user: User,
                         message: str | None = None, status_code: int = 200) -> Response:
    return account_page(request, cookies, "account_delete.html", {
        "user": user, "preview": await erasure.preview(ctx, user.id), "message": message,
    }, "delete", status_code=status_code)


@router.get("/delete")
async def deletion_page(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    signed_in = await center.signed_in(ctx, cookies.session_cookie(request))
    if signed_in is None:
        return see_other("/account/login")
    user, info = signed_in
    if not await center.confirmed_recently(ctx, info):
        return see_other(REAUTH)
    return await _deletion_page(request, ctx, cookies, user)


@router.post("/delete")
async def delete_account(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    signed_in = await center.signed_in(ctx, cookies.session_cookie(request))
    if signed_in is None:
        return see_other("/account/login")
    user, info = signed_in
    values = await account_form(request, cookies, "delete")
    # Federation.md §9 requirement 25: deleting needs a sign-in fresh enough to prove it is
    # the customer at the keyboard, not someone at an unlocked browser.
    if not await center.confirmed_recently(ctx, info):
        return see_other(REAUTH)
    if not confirmed(user, first(values, "confirmation")):
        return await _deletion_page(
            request, ctx, cookies, user, status_code=400,
            message="Type your email address or the word DELETE to confirm.")
    # Deleted a moment ago by another request: the outcome is the same.
    with contextlib.suppress(erasure.AccountNotFound):
        await erasure.delete_account(ctx, user.id, initiator="customer")
    response = page(request, "account_delete.html", {"deleted": True})
    cookies.clear_session(response)
    return response
