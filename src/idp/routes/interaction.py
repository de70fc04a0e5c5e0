"""Login, registration and consent pages. Every POST carries a CSRF token bound to the browser
and the interaction (RFC 6749 §10.12); every page is no-store and unframeable."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from idp import errors
from idp.protocol.client_display import image_source
from idp.routes.authorize import respond
from idp.services.accounts import signup
from idp.services.context import Context
from idp.services.profile import collect
from idp.services.profile.collect import AnswersRefused
from idp.services.signin.authorization import abort_authorization, resume_authorization
from idp.services.signin.interaction import (
    ConsentAnswer,
    ConsentTextsChanged,
    LoginFailed,
    SignedIn,
    give_consent,
    login_with_password,
    page_context,
    pending_picture,
    sign_in_page_context,
)
from idp.services.signin.passkey_login import login_challenge, sign_in_with_passkey
from idp.services.signin.passkeys import PasskeyRefused
from idp.services.signin.second_factor import SecondFactorRequired
from idp.services.signin.upstream_login import login_and_link
from idp.web.browser import BrowserCookies, CookiesDep
from idp.web.deps import CtxDep, read_form
from idp.web.i18n import N_, gettext
from idp.web.responses import NO_STORE, allow_own_scripts, deliver, page
from idp.web.theme import allow_images_from

router = APIRouter(prefix="/interaction/{interaction_id}", tags=["Pages"],
                   include_in_schema=False)

STALE = N_("This sign-in request has expired or belongs to another browser. Return to the "
            "app.")


def _browser(request: Request, cookies: BrowserCookies) -> str:
    browser_id = cookies.browser_id(request)
    if browser_id is None:
        raise errors.InvalidRequest(STALE, redirectable=False)
    return browser_id


async def _checked_form(request: Request, cookies: BrowserCookies, purpose: str
                        ) -> tuple[str, dict[str, str]]:
    browser_id, pairs = await _checked_pairs(request, cookies, purpose)
    return browser_id, dict(pairs)


async def _checked_pairs(request: Request, cookies: BrowserCookies, purpose: str
                         ) -> tuple[str, list[tuple[str, str]]]:
    _browser(request, cookies)
    pairs = await read_form(request)
    token = next((v for k, v in pairs if k == "csrf_token"), None)
    return cookies.check_form(request, purpose, token), pairs


def sends_gpc(request: Request) -> bool:
    """Global Privacy Control: `Sec-GPC: 1` (GPC specification §3)."""
    return request.headers.get("sec-gpc", "").strip() == "1"


async def render_page(request: Request, ctx: Context, cookies: BrowserCookies, interaction_id: str,
                      template: str, message: str | None = None, email: str = "",
                      link_handle: str | None = None, sent: bool = False,
                      refused: AnswersRefused | None = None) -> Response:
    browser_id = _browser(request, cookies)
    if template == "consent":
        view = await page_context(ctx, interaction_id, browser_id,
                                  cookies.session_cookie(request), gpc=sends_gpc(request))
    else:  # sign-in and registration show nothing of the consent
        # Username-less passkey sign-in (issue 12 item 5): a fresh challenge for this page.
        passkey = template == "login" and not link_handle
        view = await sign_in_page_context(
            ctx, interaction_id, browser_id, upstreams=template == "login",
            challenge=login_challenge(interaction_id, browser_id) if passkey else None)
    context: dict[str, Any] = {
        "interaction_id": interaction_id,
        "client_name": view.client.name,
        "csrf_token": cookies.csrf_token(browser_id, f"{template}:{interaction_id}"),
        "cancel_token": cookies.csrf_token(browser_id, f"cancel:{interaction_id}"),
        "message": message,
        "email": email or view.request.login_hint or "",
        "data": view.changed_data,
        "kept_scopes": view.kept_scopes,
        "extra_claims": view.extra_claims,
        "purposes": view.changed_purposes,
        "kept_purposes": view.kept_purposes,
        "gpc": sends_gpc(request),
        "min_length": ctx.settings.password_min_length,
        "texts_digest": view.texts_digest,
        "claim_titles": view.claim_titles,
        "upstreams": view.upstreams,
        "federation_token": cookies.csrf_token(browser_id, f"federation:{interaction_id}"),
        "link_handle": link_handle,
        "profile_import": view.profile_import,
        "returning": view.returning,
        "sent": sent,
        "signup_minutes": ctx.settings.signup_ttl // 60,
        "passkey_options": view.passkey_options,
        "passkey_token": cookies.csrf_token(browser_id, f"passkey:{interaction_id}"),
        # Issue 16 item 3: the inputs for what the app asked for (consent_profile_fields.html).
        "profile_fields": collect.fields(view.profile_fields, *(
            (refused.typed, refused.problems) if refused else ())),
    }
    logo = image_source(view.client.logo_uri) if view.client.logo_uri else None
    if template == "consent":
        if view.signed_in_email is None:
            return RedirectResponse(f"/interaction/{interaction_id}", 303, headers=NO_STORE)
        context["email"] = view.signed_in_email
        context.update(client_logo_uri=view.client.logo_uri if logo else None,
                       client_policy_uri=view.client.policy_uri,
                       client_tos_uri=view.client.tos_uri)
    response = page(request, f"{template}.html", context)
    if template == "consent" and logo:
        allow_images_from(response, logo)
    return allow_own_scripts(response) if context["passkey_options"] else response


async def _continue(request: Request, ctx: Context, cookies: BrowserCookies, interaction_id: str,
                    browser_id: str, session_cookie: str | None) -> Response:
    outcome = await resume_authorization(ctx, interaction_id, browser_id, session_cookie)
    return respond(request, outcome)


@router.get("")
async def resume(interaction_id: str, request: Request, ctx: CtxDep, cookies: CookiesDep
                 ) -> Response:
    browser_id = _browser(request, cookies)
    return await _continue(request, ctx, cookies, interaction_id, browser_id,
                           cookies.session_cookie(request))


@router.get("/login")
async def login_page(interaction_id: str, request: Request, ctx: CtxDep, cookies: CookiesDep
                     ) -> Response:
    return await render_page(request, ctx, cookies, interaction_id, "login")


PasswordStep = Callable[[Context, str, str, str, str, str | None], Awaitable[SignedIn]]


async def _password_step(request: Request, ctx: Context, cookies: BrowserCookies,
                         interaction_id: str, template: str, step: PasswordStep) -> Response:
    """Sign in or register, then continue the authorization with the new session cookie."""
    browser_id, form = await _checked_form(request, cookies, f"{template}:{interaction_id}")
    email = form.get("email", "")
    try:
        signed_in = await step(ctx, interaction_id, browser_id, email,
                               form.get("password", ""), cookies.session_cookie(request))
    except LoginFailed as failed:
        return await render_page(request, ctx, cookies, interaction_id, template, failed.message,
                             email)
    except SecondFactorRequired as needed:  # the account's second factor, on its own page
        return RedirectResponse(needed.location, 303, headers=NO_STORE)
    return await _signed_in(request, ctx, cookies, interaction_id, browser_id, signed_in)


async def _signed_in(request: Request, ctx: Context, cookies: BrowserCookies,
                     interaction_id: str, browser_id: str, signed_in: SignedIn) -> Response:
    """The new session's cookie on the authorization's next step (decided in the sign-in's
    own unit of work, or resumed now)."""
    if signed_in.outcome is not None:
        response = respond(request, signed_in.outcome)
    else:
        response = await _continue(request, ctx, cookies, interaction_id, browser_id,
                                   signed_in.cookie)
    cookies.set_session(response, signed_in.cookie)
    return response


@router.post("/login")
async def login(interaction_id: str, request: Request, ctx: CtxDep, cookies: CookiesDep
                ) -> Response:
    form = await request.form()
    handle = form.get("link")
    if isinstance(handle, str) and handle:
        # The customer proves the existing account to connect an upstream identity to it.
        return await _password_step(request, ctx, cookies, interaction_id, "login",
                                    partial(login_and_link, handle=handle))
    return await _password_step(request, ctx, cookies, interaction_id, "login",
                                login_with_password)


@router.post("/passkey")
async def passkey(interaction_id: str, request: Request, ctx: CtxDep, cookies: CookiesDep
                  ) -> Response:
    """The login page's passkey answer (username-less); a refusal shows the login page again
    with its message, the same whichever account the credential named or did not."""
    browser_id, form = await _checked_form(request, cookies, f"passkey:{interaction_id}")
    try:
        signed_in = await sign_in_with_passkey(ctx, interaction_id, browser_id,
                                               form.get("credential", ""),
                                               cookies.session_cookie(request))
    except PasskeyRefused as refused:
        return await render_page(request, ctx, cookies, interaction_id, "login",
                                 refused.message)
    except SecondFactorRequired as needed:
        return RedirectResponse(needed.location, 303, headers=NO_STORE)
    return await _signed_in(request, ctx, cookies, interaction_id, browser_id, signed_in)


@router.get("/register")
async def register_page(interaction_id: str, request: Request, ctx: CtxDep, cookies: CookiesDep
                        ) -> Response:
    return await render_page(request, ctx, cookies, interaction_id, "register")


@router.post("/register")
async def register(interaction_id: str, request: Request, ctx: CtxDep, cookies: CookiesDep
                   ) -> Response:
    """Issue 12 item 2: the address only; the same answer whatever it is (the mail tells)."""
    browser_id, form = await _checked_form(request, cookies, f"register:{interaction_id}")
    email = form.get("email", "")
    try:
        await signup.request_signup(ctx, interaction_id, browser_id, email)
    except LoginFailed as failed:
        return await render_page(request, ctx, cookies, interaction_id, "register",
                                 failed.message, email)
    return await render_page(request, ctx, cookies, interaction_id, "register", sent=True)


@router.get("/consent")
async def consent_page(interaction_id: str, request: Request, ctx: CtxDep, cookies: CookiesDep
                       ) -> Response:
    return await render_page(request, ctx, cookies, interaction_id, "consent")


@router.post("/consent")
async def consent(interaction_id: str, request: Request, ctx: CtxDep, cookies: CookiesDep
                  ) -> Response:
    browser_id, pairs = await _checked_pairs(request, cookies, f"consent:{interaction_id}")
    session_cookie = cookies.session_cookie(request)
    form = dict(pairs)
    try:
        await give_consent(ctx, interaction_id, browser_id, session_cookie, ConsentAnswer(
            scopes=[v for k, v in pairs if k == "scope"],
            purposes=[v for k, v in pairs if k == "purpose"], gpc=sends_gpc(request),
            imports=frozenset(v for k, v in pairs if k == "import"),
            language=form.get("lang"), texts=form.get("texts"),
            profile=collect.answers_of(pairs)))
    except AnswersRefused as refused:
        # Nothing was recorded: the page again, with what was typed and why it was refused.
        page = await render_page(request, ctx, cookies, interaction_id, "consent",
                                 refused=refused)
        if page.status_code == 200:
            page.status_code = 400
        return page
    except ConsentTextsChanged:
        return await render_page(request, ctx, cookies, interaction_id, "consent", gettext(
            "The wording changed while you were reading. Read it again, then answer."))
    return await _continue(request, ctx, cookies, interaction_id, browser_id, session_cookie)


@router.get("/consent/picture")
async def offered_picture(interaction_id: str, request: Request, ctx: CtxDep,
                          cookies: CookiesDep) -> Response:
    """The picture an upstream offers to import, shown on the consent page from our origin."""
    image = await pending_picture(ctx, interaction_id, _browser(request, cookies))
    if image is None:
        return Response(status_code=404, headers=NO_STORE)
    return Response(image.data, media_type=image.content_type, headers={
        **NO_STORE, "Content-Security-Policy": "default-src 'none'; sandbox"})


@router.post("/cancel")
async def cancel(interaction_id: str, request: Request, ctx: CtxDep, cookies: CookiesDep
                 ) -> Response:
    browser_id, _ = await _checked_form(request, cookies, f"cancel:{interaction_id}")
    return deliver(request, await abort_authorization(ctx, interaction_id, browser_id))
