"""Exception handlers: protocol errors in the RFC vocabulary, database outages as 503."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response

from idp import errors
from idp.services import InvalidInput, NotFound
from idp.web.i18n import N_, gettext, ngettext
from idp.web.responses import NO_STORE, error_page, oauth_json_error

log = logging.getLogger("idp.web")


def wants_html(request: Request) -> bool:
    path = request.url.path
    return path == "/device" or path.startswith((
        "/authorize", "/interaction", "/logout", "/account", "/federation", "/device/",
        "/signup"))


# "Too many ..." on the 429 page, per `Throttled.what`, in the customer's language.
TOO_MANY = {
    "sign-in attempts": N_("Too many sign-in attempts."),
    "codes entered": N_("Too many codes entered."),
    "downloads of your data": N_("Too many downloads of your data."),
    "password reset requests": N_("Too many password reset requests."),
    "registration requests": N_("Too many registration requests."),
    "address change requests": N_("Too many address change requests."),
    "client registrations": N_("Too many client registrations."),
}
TOO_MANY_OTHER = N_("Too many attempts.")


def throttled_words(exc: errors.Throttled) -> str:
    too_many = gettext(TOO_MANY.get(exc.what, TOO_MANY_OTHER))
    wait = ngettext("Wait %(num)s second, then try again.",
                    "Wait %(num)s seconds, then try again.", exc.retry_after)
    return f"{too_many} {wait}"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.OAuthError)
    async def _oauth_error(request: Request, exc: errors.OAuthError) -> Response:
        if wants_html(request):
            return error_page(request, exc)
        scheme = request.headers.get("authorization", "").partition(" ")[0]
        return oauth_json_error(exc, bearer=request.url.path.startswith(
            ("/userinfo", "/grants", "/admin/", "/register", "/profile/")),
            dpop=scheme.lower() == "dpop")

    @app.exception_handler(InvalidInput)
    async def _invalid_input(request: Request, exc: InvalidInput) -> Response:
        # An operator's input the service refused (the admin API): the rule it broke.
        return await _oauth_error(request, errors.InvalidRequest(str(exc)))

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> Response:
        return JSONResponse({"error": "not_found", "error_description": str(exc)},
                            status_code=404, headers=NO_STORE)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return await _oauth_error(request, errors.InvalidRequest("The request is malformed"))

    async def _database_down(request: Request, exc: Exception) -> Response:
        # REL-03: a database outage is 503 with Retry-After, never a stack trace.
        log.error("database unavailable: %s", type(exc).__name__)
        response = await _oauth_error(request, errors.TemporarilyUnavailable())
        response.headers["Retry-After"] = "5"
        return response

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(request: Request, exc: ClientDisconnect) -> Response:
        # The client hung up while sending its body: nothing to answer and nothing broken,
        # so no traceback at ERROR level. The unit of work (if any) was never entered.
        log.info("client disconnected before its request body arrived: %s", request.url.path)
        return Response(status_code=400)

    @app.exception_handler(errors.Throttled)
    async def _throttled(request: Request, exc: errors.Throttled) -> Response:
        # security.md ATO-01/02: a delay, never a lockout; the same answer whether or not the
        # account exists. 429 with Retry-After (RFC 6585 §4).
        wait = errors.TemporarilyUnavailable(
            f"Too many {exc.what}. Wait {exc.retry_after} seconds, then try again.")
        response = error_page(request, wait, throttled_words(exc)) if wants_html(request) \
            else oauth_json_error(wait)
        response.status_code = 429
        response.headers["Retry-After"] = str(exc.retry_after)
        return response

    for exc_type in (OperationalError, InterfaceError, ConnectionError, OSError):
        app.add_exception_handler(exc_type, _database_down)
