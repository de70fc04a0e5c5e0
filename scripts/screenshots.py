"""Screenshots of the sign-in and consent pages in English and Arabic, 320 px and 1280 px wide,
for review of the layout, the brand's look and right-to-left (issue 15, Done when).

    .venv/bin/python scripts/screenshots.py OUTPUT_DIR [--client-logo URL] [--chromium PATH]

Serves the IdP on loopback in dev mode on a throwaway SQLite database with one app ("Shop")
and one customer, and drives headless Chromium through the pages; writes
`<lang>-<page>-<width>.png` (full page) into OUTPUT_DIR. The brand comes from the environment
as for `idp serve` (IDP_BRAND_*, IDP_THEME_DIR, IDP_PRIVACY_POLICY_URL), so an operator can
review their own look before going live.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import secrets
import socket
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlencode

import uvicorn
from playwright.async_api import Browser, async_playwright

from idp.main import create_app
from idp.services.accounts import admin
from idp.services.context import build_context
from idp.settings import Settings
from idp.store import migrate

PAGES_LANGUAGES = ("en", "ar")
WIDTHS = (320, 1280)
EMAIL, PASSWORD = "layla@example.com", "a long review passphrase"
REDIRECT_URI = "com.example.shop:/callback"


def challenge() -> str:
    """RFC 7636 §4.2: a fresh S256 challenge per request (the verifier is never used)."""
    digest = hashlib.sha256(secrets.token_urlsafe(48).encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def shoot(browser: Browser, issuer: str, client_id: str, lang: str, out: Path
                ) -> list[Path]:
    context = await browser.new_context(locale=lang, viewport={"width": WIDTHS[-1],
                                                               "height": 900})
    context.set_default_timeout(15_000)
    written: list[Path] = []
    try:
        page = await context.new_page()
        query = urlencode({"response_type": "code", "client_id": client_id,
                           "redirect_uri": REDIRECT_URI, "scope": "openid profile email",
                           "state": "review", "ui_locales": lang,
                           "code_challenge": challenge(), "code_challenge_method": "S256"})
        await page.goto(f"{issuer}/authorize?{query}")

        async def capture(name: str) -> None:
            for width in WIDTHS:
                await page.set_viewport_size({"width": width, "height": 900})
                path = out / f"{lang}-{name}-{width}.png"
                await page.screenshot(path=str(path), full_page=True)
                written.append(path)

        await capture("sign-in")
        await page.locator("#email").fill(EMAIL)
        await page.locator("#password").fill(PASSWORD)
        async with page.expect_navigation():
            await page.locator("form:has(#password) button.primary").click()
        await page.wait_for_url("**/consent")
        await capture("consent")
    finally:
        await context.close()
    return written


async def run(out: Path, chromium: str, client_logo: str | None) -> list[Path]:
    with tempfile.TemporaryDirectory() as folder, socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        issuer = f"http://127.0.0.1:{sock.getsockname()[1]}"
        database_url = f"sqlite+aiosqlite:///{folder}/idp.db"
        await asyncio.to_thread(migrate.upgrade, database_url)
        settings = Settings(issuer=issuer, database_url=database_url, dev_mode=True,
                            data_dir=Path(folder), mail_dir=Path(folder) / "mail",
                            background_tasks=False, migrate_on_start=False)
        ctx = build_context(settings)
        try:
            await ctx.keys.ensure_keys()
            app = await admin.create_client(
                ctx, name="Shop", redirect_uris=[REDIRECT_URI], client_type="public",
                application_type="native", scopes=["openid", "profile", "email"],
                optional_scopes=["profile"], logo_uri=client_logo,
                policy_uri="https://shop.example/privacy", tos_uri="https://shop.example/terms")
            await admin.create_user(ctx, email=EMAIL, password=PASSWORD, email_verified=True,
                                    profile={"name": "Layla Haddad"})
            server = uvicorn.Server(uvicorn.Config(create_app(settings, ctx=ctx),
                                                   log_level="warning", lifespan="on"))
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            while not server.started:
                if serving.done():
                    serving.result()
                await asyncio.sleep(0.05)
            written: list[Path] = []
            try:
                async with async_playwright() as playwright:
                    browser = await playwright.chromium.launch(
                        executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
                    try:
                        for lang in PAGES_LANGUAGES:
                            written += await shoot(browser, issuer, app.client.client_id,
                                                   lang, out)
                    finally:
                        await browser.close()
            finally:
                server.should_exit = True
                await serving
            return written
        finally:
            await ctx.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="folder for the PNG files")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--client-logo", default=None, metavar="URL",
                        help="the app's logo_uri (https) shown on the consent page")
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    for path in asyncio.run(run(args.output, args.chromium, args.client_logo)):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
