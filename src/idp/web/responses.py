"""Turning outcomes and errors into HTTP responses: the one place that does so."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from idp import errors, locales
from idp.protocol.dpop import DPOP_SIGNING_ALGS
from idp.services.context import Context
from idp.services.signin.respond import AuthorizationResponse
from idp.services.tokens.dpop import fresh_nonce
from idp.web.i18n import error_summary, page_language, shown_description
from idp.web.security import CSP

log = logging.getLogger("idp.web")
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
# Pages mark their text with _() / ngettext() (Jinja2's i18n extension, new style), in the
# request's language (idp.web.i18n); `when` and `number` write times and numbers in it.
locales.install_gettext(templates.env)
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class JSONBody(JSONResponse):
    """`JSONResponse`, byte for byte (compact, UTF-8, key order kept), written by orjson:
    the token, introspection and UserInfo answers. What orjson refuses (an integer beyond
    64 bits, a key that is not a string) is written by the standard library as before.
    (Unlike it, orjson writes a NaN as null; no answer holds one: JSON columns cannot.)"""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:  # orjson.JSONEncodeError is one
            return super().render(content)


def page(request: Request, name: str, context: dict[str, Any], status_code: int = 200
         ) -> HTMLResponse:
    # The theme folder's templates first, when it has any; the brand for base.html
    # (idp.web.theme, set up by create_app).
    state = request.app.state
    themed = getattr(state, "templates", templates)
    context = {"brand": getattr(state, "brand", None), **context}
    context.update(page_language(request))
    response = themed.TemplateResponse(request, name, context, status_code=status_code)
    response.headers.update(NO_STORE)
    return response


def allow_own_scripts(response: Response) -> Response:
    """A page with the passkey script (progressive enhancement): scripts from our own
    origin only (/static/passkeys.js), nothing inline; the rest of the policy unchanged."""
    response.headers["Content-Security-Policy"] = f"{CSP}; script-src 'self'"
    return response


def error_page(request: Request, exc: errors.OAuthError, detail: str | None = None
               ) -> HTMLResponse:
    """The error page: a plain-words summary of the error code, and the description when
    it is written for customers (translated); `detail`: words already in the language."""
    # 400 for what the request got wrong, 403 for a form refused as a possible forgery, 500
    # and 503 for our own trouble; never 401, which would ask the browser for credentials.
    status = exc.status_code if exc.status_code in (403, 500, 503) else 400
    return page(request, "error.html", {
        "error": exc.error, "summary": error_summary(exc.error),
        "description": detail if detail is not None else shown_description(exc.description)},
        status_code=status)


def auto_submit_page(request: Request, method: str, action: str,
                     params: list[tuple[str, str]]) -> HTMLResponse:
    """A page whose form submits itself: its one script is allowed by a fresh nonce, and a
    button does the same without JavaScript."""
    nonce = secrets.token_urlsafe(16)
    response = page(request, "auto_submit.html", {
        "method": method, "action": action, "params": params, "nonce": nonce})
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return response


def deliver(request: Request, outcome: AuthorizationResponse) -> Response:
    """RFC 6749 §4.1.2 (query) or OAuth 2.0 Form Post Response Mode."""
    if outcome.response_mode == "form_post":
        return auto_submit_page(request, "post", outcome.redirect_uri,
                                list(outcome.params.items()))
    separator = "&" if "?" in outcome.redirect_uri else "?"
    location = f"{outcome.redirect_uri}{separator}{urlencode(outcome.params)}"
    # RFC 9700 §4.12: 303, never 307, after a POST that may carry credentials.
    return RedirectResponse(location, status_code=303, headers=NO_STORE)


def oauth_json_error(exc: errors.OAuthError, bearer: bool = False, dpop: bool = False
                     ) -> JSONResponse:
    """`bearer`: answered by a protected resource (RFC 6750 §3); `dpop`: whose request came
    with the DPoP scheme (RFC 9449 §7.1)."""
    body = {"error": exc.error}
    if exc.description:
        body["error_description"] = exc.description
    headers = dict(NO_STORE)
    status = exc.status_code
    if status == 401 and not bearer:
        # RFC 6749 §5.2: 401 for client authentication failures, with WWW-Authenticate.
        headers["WWW-Authenticate"] = 'Basic realm="idp"'
    if status == 503:
        headers["Retry-After"] = "5"
    if isinstance(exc, errors.UseDpopNonce):
        # RFC 9449 §8, §9: the nonce to retry with.
        headers["DPoP-Nonce"] = exc.nonce
    if bearer:
        scheme = "DPoP" if dpop or exc.scheme == "DPoP" else "Bearer"
        if isinstance(exc, errors.InvalidDpopProof | errors.UseDpopNonce):
            status = 401  # RFC 9449 §7.1, §9: a protected resource's challenge
        # RFC 6750 §3: the challenge names the error.
        challenge = f'{scheme} realm="idp", error="{exc.error}"'
        if exc.description:
            challenge += f', error_description="{exc.description}"'
        if scheme == "DPoP":
            # RFC 9449 §7.1: the algorithms a proof may use.
            challenge += f', algs="{" ".join(DPOP_SIGNING_ALGS)}"'
        headers["WWW-Authenticate"] = challenge
    return JSONResponse(body, status_code=status, headers=headers)


def with_dpop_nonce(ctx: Context, headers: dict[str, str], proofs: Sequence[str]
                    ) -> dict[str, str]:
    """RFC 9449 §8.2, §9: while nonces are required, an answer to a request with a proof
    carries the nonce for the next one."""
    nonce = fresh_nonce(ctx) if proofs else None
    return {**headers, "DPoP-Nonce": nonce} if nonce is not None else headers
