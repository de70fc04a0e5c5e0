"""The operator's API console at /docs: Swagger UI 5 (OpenAPI 3.1) from a packaged copy (the
static files the `fastapi-offline` distribution ships), served by us, so it works on a network
without internet and under a strict Content-Security-Policy (no CDN, no inline script)."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

router = APIRouter(include_in_schema=False)

ASSETS = "/docs/assets"
# Only this page's own files: Swagger UI's bundle and stylesheet, and our initializer.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")

PAGE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>idp API</title>
  <link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
  <link rel="icon" type="image/png" href="{ASSETS}/favicon.png">
</head>
<body>
  <main id="swagger-ui" data-openapi-url="/openapi.json"></main>
  <noscript>The API console needs JavaScript; the document itself is at
    <a href="/openapi.json">/openapi.json</a>.</noscript>
  <script src="{ASSETS}/swagger-ui-bundle.js"></script>
  <script src="/static/docs-init.js"></script>
</body>
</html>
"""


@router.get("/docs")
async def docs() -> HTMLResponse:
    return HTMLResponse(PAGE, headers={"Content-Security-Policy": CSP,
                                       "Cache-Control": "no-cache"})


def mount_assets(app: FastAPI) -> None:
    app.mount(ASSETS, StaticFiles(directory=Path(fastapi_offline.__file__).parent / "static"),
              name="docs-assets")
