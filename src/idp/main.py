"""The application factory. Nothing is created at import time."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import FrameType

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from idp import heap
from idp.notifications.dispatcher import Dispatcher
from idp.observability import logs, metrics
from idp.routes import (
    account,
    account_deletion,
    account_email,
    account_export,
    account_passkeys,
    account_privacy_choices,
    account_profile,
    account_sections,
    account_sessions,
    account_two_step,
    admin,
    authorize,
    device,
    discovery,
    docs,
    federation,
    grants,
    health,
    interaction,
    language,
    logout,
    operations,
    pictures,
    privacy,
    profile_api,
    recovery,
    registration,
    revocation,
    second_factor,
    signup,
    token,
    upstream_hooks,
    userinfo,
)
from idp.routes.account_privacy_choices import honour_gpc
from idp.services import maintenance
from idp.services.context import Context, build_context
from idp.services.senders import outbox_senders
from idp.settings import Settings
from idp.web.browser import BrowserCookies
from idp.web.errors import install_error_handlers
from idp.web.hot import HotRoutes
from idp.web.i18n import LanguageNegotiation
from idp.web.observe import RequestObserver
from idp.web.security import SecurityHeaders
from idp.web.source import ClientSource
from idp.web.theme import install_theme

# How long shutdown waits for a delivery the dispatcher has begun (its HTTP timeout is 5 s).
SHUTDOWN_DELIVERY_SECONDS = 10

DESCRIPTION = """Customer identity and consent service: an OAuth 2.0 authorization server and
OpenID Provider. Protocol endpoints follow OIDC Core 1.0, RFC 6749, RFC 7636, RFC 8414,
RFC 9068 and RFC 9207."""


def create_app(settings: Settings, ctx: Context | None = None) -> FastAPI:
    """Build the app. With `ctx`, the caller owns the context (tests, embedding); without it
    the lifespan builds one, makes sure signing keys exist, and closes it at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = ctx is None
        context = ctx or build_context(settings)
        app.state.ctx = context
        context.db.observe_pool()
        if owned:
            await context.keys.ensure_keys()
        await context.passwords.warm_up()
        tasks: list[asyncio.Task[None]] = []
        if owned:
            # A serving process: everything built so far (the app, its routes, SQLAlchemy's
            # and pydantic's tables) lives as long as the process. Out of the collector's
            # sight, a full collection no longer walks it; those walks were the tail of every
            # hot path's latency (UserInfo p99 114 ms -> 36 ms, bench/oidc_load.py). Again
            # once the first requests have built what they build on first use (idp.heap).
            # Not for an embedding caller, whose apps come and go.
            heap.settle()
            tasks.append(asyncio.create_task(heap.settle_while_warming()))
        delivering: asyncio.Task[None] | None = None
        dispatcher = Dispatcher(context, senders=outbox_senders,
                                allow_private=settings.dev_mode)
        if settings.background_tasks:
            context.outbox_signal = dispatcher.wake.set
            delivering = asyncio.create_task(
                dispatcher.run_forever(settings.outbox_interval_seconds))
            tasks.append(asyncio.create_task(
                maintenance.run_forever(context, settings.maintenance_interval_seconds)))
        app.state.draining = False
        if owned:
            drain_on_sigterm(app, settings.shutdown_drain_seconds)
            if context.db.dialect == "postgresql":
                # A key rotation anywhere is used here at once (LISTEN/NOTIFY).
                tasks.append(asyncio.create_task(context.keys.listen()))
        try:
            yield
        finally:
            # The dispatcher finishes the deliveries it has begun (each is recorded) and
            # stops before the next; what it has not begun waits in the outbox for the next
            # start or another replica. Maintenance is cut off: its unit of work rolls back.
            dispatcher.stop()
            for task in tasks:
                task.cancel()
            if delivering is not None:
                done, _ = await asyncio.wait({delivering}, timeout=SHUTDOWN_DELIVERY_SECONDS)
                if not done:
                    delivering.cancel()
                tasks.append(delivering)
            await asyncio.gather(*tasks, return_exceptions=True)
            context.outbox_signal = None
            await dispatcher.close()
            if owned:
                await context.close()
                metrics.process_exited(os.getpid())

    app = FastAPI(
        title="idp", version="0.1.0", description=DESCRIPTION, lifespan=lifespan,
        docs_url=None, redoc_url=None, openapi_url="/openapi.json",
        # FastAPI's own OpenTelemetry spans, metrics and logs stay off, whatever OpenTelemetry
        # the process has (FASTAPI_OTEL_AUTO_CONFIGURE, an SDK set up by a wrapper): its spans
        # carry the whole query string (`url.query`), which here holds authorization codes,
        # `state`, `login_hint` and `id_token_hint`, and its logs the messages of unhandled
        # exceptions. Requests are observed by idp.web.observe instead (no query string, ever).
        # Its per-request check for a configured provider also cost 4-5 us of CPU a request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )

    app.state.settings = settings
    app.state.cookies = BrowserCookies(settings)
    if ctx is not None:
        app.state.ctx = ctx
        ctx.db.observe_pool()
    install_error_handlers(app)
    for module in (discovery, authorize, interaction, second_factor, token, device, revocation,
                   language, userinfo, logout, grants, account, account_sections, account_deletion,
                   account_email, account_export, account_sessions, account_two_step,
                   account_passkeys, account_profile, profile_api,
                   recovery, federation, upstream_hooks, pictures, health, operations,
                   registration, signup, admin, docs, privacy, account_privacy_choices):
        # A signed-in account-center request with `Sec-GPC: 1` opts the account out of sale
        # and sharing, whichever page it is for (idp.routes.account_privacy_choices).
        gpc = module.router.prefix.startswith("/account")
        app.include_router(module.router, dependencies=[Depends(honour_gpc)] if gpc else None)
    docs.mount_assets(app)
    install_theme(app, settings)
    static = Path(__file__).parent / "web" / "static"
    app.mount("/static", StaticFiles(directory=static), name="static")
    app.add_middleware(HotRoutes, owner=app)  # after every middleware below
    # The page's language (idp.web.i18n), for the hot page too (idp.web.hot); the hot
    # protocol endpoints pass it by at the cost of a set lookup.
    app.add_middleware(LanguageNegotiation, settings=settings)
    app.add_middleware(ClientSource, trusted_proxies=settings.trusted_proxies,
                       cookies=app.state.cookies)
    app.add_middleware(SecurityHeaders, hsts=settings.secure_cookies)
    app.add_middleware(RequestObserver)
    return app


def drain_on_sigterm(app: FastAPI, seconds: float) -> None:
    """SIGTERM (an orchestrator taking this process out) first makes /health/ready answer
    503, so load balancers stop sending new requests, while every request still gets
    served; after `seconds` the server's own graceful shutdown follows (no new connections,
    requests in flight finish). SIGINT, an operator's Ctrl-C, stops at once as before.

    Installed from the lifespan, which runs after the server took the signals: the server's
    handler is kept and called when the drain ends."""
    if threading.current_thread() is not threading.main_thread():
        return  # signals reach the main thread only (an embedding caller's thread)
    loop = asyncio.get_running_loop()
    server_handler = signal.getsignal(signal.SIGTERM)

    def on_sigterm(sig: int, frame: FrameType | None) -> None:
        if app.state.draining:
            return
        app.state.draining = True
        if callable(server_handler):
            loop.call_soon_threadsafe(loop.call_later, seconds, server_handler, sig, frame)

    signal.signal(signal.SIGTERM, on_sigterm)


def app_from_environment() -> FastAPI:
    """The factory each worker process of `idp serve --workers N` calls: the settings come
    from the same `IDP_` environment the parent validated."""
    settings = Settings()
    logs.configure(settings.log_level, settings.log_format)
    return create_app(settings)
