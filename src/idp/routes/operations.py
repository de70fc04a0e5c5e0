"""Prometheus metrics (README "Operations")."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from idp.observability import metrics
from idp.services import maintenance
from idp.web.deps import CtxDep

router = APIRouter(tags=["Operations"])


@router.get("/metrics", summary="Prometheus metrics of every worker",
            response_class=Response,
            responses={200: {"description": "Prometheus text exposition format",
                             "content": {"text/plain": {}}},
                       401: {"description": "IDP_METRICS_TOKEN is set and was not sent"},
                       404: {"description": "Metrics are switched off"}})
async def get_metrics(request: Request, ctx: CtxDep) -> Response:
    settings = ctx.settings
    if not settings.metrics_enabled:
        return JSONResponse({"detail": "Not Found"}, status_code=404)
    if settings.metrics_token is not None:
        expected = f"Bearer {settings.metrics_token.get_secret_value()}".encode()
        sent = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(sent, expected):
            return JSONResponse({"detail": "A bearer token is required"}, status_code=401,
                                headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    backlog, oldest_age = await maintenance.outbox_state(ctx)
    body = metrics.render(metrics.OutboxState(backlog, oldest_age))
    return Response(body, media_type=metrics.CONTENT_TYPE,
                    headers={"Cache-Control": "no-store"})
