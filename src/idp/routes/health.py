"""Liveness and readiness (REL-03)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from idp.web.deps import CtxDep

router = APIRouter(prefix="/health", tags=["Operations"])


@router.get("/live", summary="The process is up")
async def live() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/ready", summary="The database answers and the process is not shutting down")
async def ready(request: Request, ctx: CtxDep) -> JSONResponse:
    if getattr(request.app.state, "draining", False):
        # SIGTERM: drain. Requests are still served; new ones should go elsewhere.
        return JSONResponse({"status": "draining"}, status_code=503,
                            headers={"Retry-After": "5"})
    try:
        # One statement in its own transaction: no BEGIN and COMMIT around it, and on SQLite
        # no write lock, which a probe would otherwise queue for behind every writer (for up
        # to the 30 s busy timeout, and be taken out of the load balancer meanwhile).
        async with ctx.db.autocommit() as session:
            await session.execute(text("SELECT 1"))
    except Exception:
        return JSONResponse({"status": "unavailable"}, status_code=503,
                            headers={"Retry-After": "5"})
    return JSONResponse({"status": "ok"})
