"""Dependency aliases shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData

from idp import errors
from idp.services.context import Context


async def get_context(request: Request) -> Context:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per request.
    ctx: Context = request.app.state.ctx
    return ctx


CtxDep = Annotated[Context, Depends(get_context)]

FORM_TYPE = "application/x-www-form-urlencoded"


async def read_form(request: Request) -> list[tuple[str, str]]:
    """Form parameters as (name, value) pairs; only url-encoded forms are accepted."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        raise errors.InvalidRequest(f"Content-Type must be {FORM_TYPE}")
    form: FormData = await request.form(max_files=0, max_fields=100)
    return [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
