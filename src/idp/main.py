"""The application factory. Nothing is created at import time."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from idp.notifications.dispatcher import Dispatcher
from idp.routes import (
    account,
    account_deletion,
    account_export,
    authorize,
    discovery,
    docs,
    federation,
    grants,
    health,
    interaction,
    logout,
    pictures,
    revocation,
    token,
    upstream_hooks,
    userinfo,
)
from idp.services import maintenance
from idp.services.context import Context, build_context
from idp.services.upstream.revocation_sender import outbox_senders
from idp.settings import Settings
from idp.web.browser import BrowserCookies
from idp.web.errors import install_error_handlers
from idp.web.security import SecurityHeaders
from idp.web.source import ClientSource

access_log = logging.getLogger("idp.access")

DESCRIPTION = """Customer identity and consent service: an OAuth 2.0 authorization server and
OpenID Provider. Protocol endpoints follow OIDC Core 1.0, RFC 6749, RFC 7636, RFC 8414,
RFC 9068 and RFC 9207."""


class AccessLog:
    """Method, path, status and time. Never the query string: it can hold codes and tokens."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not access_log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            access_log.info("%s %s %s %.1fms", scope["method"], _loggable(scope["path"]), status,
                            (time.perf_counter() - started) * 1000)


def _loggable(path: str) -> str:
    """The path, without the confirmation code of a data-deletion status page (req 13)."""
    head, marker, _ = path.partition("/deletion/")
    return f"{head}{marker}…" if marker and head.startswith("/federation/") else path


def create_app(settings: Settings, ctx: Context | None = None) -> FastAPI:
    """Build the app. With `ctx`, the caller owns the context (tests, embedding); without it
    the lifespan builds one, makes sure signing keys exist, and closes it at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = ctx is None
        context = ctx or build_context(settings)
        app.state.ctx = context
        if owned:
            await context.keys.ensure_keys()
        await context.passwords.warm_up()
        if owned:
            # A serving process: everything built so far (the app, its routes, SQLAlchemy's
            # and pydantic's tables) lives as long as the process. Out of the collector's
            # sight, a full collection no longer walks it; those walks were the tail of every
            # hot path's latency (UserInfo p99 114 ms -> 36 ms, bench/oidc_load.py). Not for
            # an embedding caller, whose apps come and go.
            gc.collect()
            gc.freeze()
        tasks: list[asyncio.Task[None]] = []
        dispatcher = Dispatcher(context, senders=outbox_senders,
                                allow_private=settings.dev_mode)
        if settings.background_tasks:
            context.outbox_signal = dispatcher.wake.set
            tasks.append(asyncio.create_task(
                dispatcher.run_forever(settings.outbox_interval_seconds)))
            tasks.append(asyncio.create_task(
                maintenance.run_forever(context, settings.maintenance_interval_seconds)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            context.outbox_signal = None
            await dispatcher.close()
            if owned:
                await context.close()

    app = FastAPI(
        title="idp", version="0.1.0", description=DESCRIPTION, lifespan=lifespan,
        docs_url=None, redoc_url=None, openapi_url="/openapi.json",
    )

    app.state.settings = settings
    app.state.cookies = BrowserCookies(settings)
    if ctx is not None:
        app.state.ctx = ctx
    install_error_handlers(app)
    for module in (discovery, authorize, interaction, token, revocation, userinfo, logout,
                   grants, account, account_deletion, account_export, federation,
                   upstream_hooks, pictures, health, docs):
        app.include_router(module.router)
    docs.mount_assets(app)
    static = Path(__file__).parent / "web" / "static"
    app.mount("/static", StaticFiles(directory=static), name="static")
    app.add_middleware(ClientSource, trusted_proxies=settings.trusted_proxies,
                       cookies=app.state.cookies)
    app.add_middleware(SecurityHeaders, hsts=settings.secure_cookies)
    app.add_middleware(AccessLog)
    return app


def app_from_environment() -> FastAPI:
    """The factory each worker process of `idp serve --workers N` calls: the settings come
    from the same `IDP_` environment the parent validated."""
    return create_app(Settings())
