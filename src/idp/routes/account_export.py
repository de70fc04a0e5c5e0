"""Downloading a copy of one's data from the account center (GDPR Art. 15 and 20; CCPA/CPRA
right to know; security.md §7 PRIV-04): a page that says what the file holds, and a form that
needs a recent sign-in and the CSRF token, answered with the JSON document as an attachment.
Rate-limited per account; delivered only to the signed-in customer it describes."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from starlette.responses import Response

from idp.services.accounts import center, export
from idp.services.signin import throttle
from idp.web.browser import CookiesDep
from idp.web.deps import CtxDep
from idp.web.forms import account_form, account_page, see_other
from idp.web.responses import NO_STORE

router = APIRouter(prefix="/account", tags=["Account center"], include_in_schema=False)
REAUTH = "/account/reauth?next=/account/export"


@router.get("/export")
async def export_page(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    signed_in = await center.signed_in(ctx, cookies.session_cookie(request))
    if signed_in is None:
        return see_other("/account/login")
    if not await center.confirmed_recently(ctx, signed_in[1]):
        return see_other(REAUTH)
    return account_page(request, cookies, "account_export.html",
                        {"per_hour": throttle.EXPORTS_PER_WINDOW}, "export")


@router.post("/export")
async def download_export(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    signed_in = await center.signed_in(ctx, cookies.session_cookie(request))
    if signed_in is None:
        return see_other("/account/login")
    user, info = signed_in
    await account_form(request, cookies, "export")
    # PRIV-04: a copy of everything needs a sign-in fresh enough to prove it is the customer
    # at the keyboard, not someone at an unlocked browser.
    if not await center.confirmed_recently(ctx, info):
        return see_other(REAUTH)
    await throttle.count_export(ctx, user.id)
    try:
        document = await export.export_account(ctx, user.id)
    except export.AccountNotFound:  # deleted a moment ago by another request
        return see_other("/account/login")
    body = json.dumps(document, indent=2, ensure_ascii=False)
    day = str(document["exported_at"])[:10]
    return Response(body.encode(), media_type="application/json", headers={
        **NO_STORE, "Content-Disposition": f'attachment; filename="idp-account-{day}.json"'})
