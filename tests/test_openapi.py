"""The committed OpenAPI document matches the app, and /docs serves it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from idp.cli.openapi import openapi_document

COMMITTED = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


def test_committed_openapi_matches_the_app() -> None:
    committed = json.loads(COMMITTED.read_text())
    assert committed == openapi_document(), (
        "openapi/openapi.json is stale: run `.venv/bin/idp openapi --output openapi/openapi.json`"
    )


def test_openapi_lists_the_protocol_endpoints() -> None:
    paths = json.loads(COMMITTED.read_text())["paths"]
    assert set(paths) >= {"/authorize", "/token", "/userinfo", "/jwks",
                          "/.well-known/openid-configuration",
                          "/.well-known/oauth-authorization-server"}
    assert set(paths["/authorize"]) == {"get", "post"}
    assert set(paths["/userinfo"]) == {"get", "post"}


async def test_docs_page_serves_the_document(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text
    # Served by us, so it works offline, under a CSP that allows nothing from elsewhere and
    # no inline script.
    csp = docs.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp
    assert "https:" not in csp and "http" not in docs.text.replace("/openapi.json", "")
    for asset, kind in (("/docs/assets/swagger-ui-bundle.js", "javascript"),
                        ("/docs/assets/swagger-ui.css", "text/css"),
                        ("/static/docs-init.js", "javascript")):
        served_asset = await client.get(asset)
        assert served_asset.status_code == 200, asset
        assert kind in served_asset.headers["content-type"]
        assert asset in docs.text
    served = (await client.get("/openapi.json")).json()
    assert served == json.loads(COMMITTED.read_text())
