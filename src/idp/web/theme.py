"""The brand's look on every page: the header's name and logo, the footer's links, the colours
as CSS custom properties in a stylesheet generated once at start-up (the pages' CSP allows
styles from our origin only, never inline), and the theme folder (IDP_THEME_DIR): templates/
overriding ours by name, static/ served at /theme/.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import BaseLoader, ChoiceLoader, FileSystemLoader
from starlette.requests import Request
from starlette.responses import Response

from idp import brand as rules
from idp.settings import Settings
from idp.web.responses import templates
from idp.web.security import CSP

STYLESHEET_PATH = "/static/brand.css"
THEME_PATH = "/theme"


@dataclass(frozen=True)
class Brand:
    """What base.html shows of the brand."""

    name: str
    logo_url: str | None
    favicon_url: str | None
    support_url: str | None
    privacy_url: str | None
    stylesheet_url: str


def brand_css(settings: Settings) -> str:
    """The custom properties idp.css reads (--accent, --on-accent; with the brand's own text
    and background also --text, --background, --error and the link colour)."""
    primary, on_primary = settings.brand_primary_color, settings.brand_on_primary_color
    lines = ["/* The brand's colours (IDP_BRAND_*), checked for contrast at start-up. */",
             f":root {{ --accent: {primary}; --on-accent: {on_primary}; }}"]
    text, background = settings.brand_text_color, settings.brand_background_color
    if text is not None and background is not None:
        # The brand's canvas in either system scheme: form controls drawn to match it.
        scheme = "dark" if rules.is_dark(background) else "light"
        error = settings.brand_error_color or rules.DEFAULT_ERROR
        lines += [
            f":root {{ color-scheme: {scheme}; --text: {text}; --background: {background}; "
            f"--error: {error}; --link: {rules.link_colour(primary, text, background)}; }}",
            "a:any-link { color: var(--link); }",
        ]
    return "\n".join(lines) + "\n"


def install_theme(app: FastAPI, settings: Settings) -> None:
    """Call before /static is mounted: the generated stylesheet is a route under it."""
    css = brand_css(settings)
    version = hashlib.sha256(css.encode()).hexdigest()[:12]
    theme = settings.theme_dir
    app.state.brand = Brand(
        name=settings.brand_name,
        logo_url=f"{THEME_PATH}/{settings.brand_logo}" if settings.brand_logo else None,
        favicon_url=f"{THEME_PATH}/{settings.brand_favicon}" if settings.brand_favicon else None,
        support_url=settings.brand_support_url, privacy_url=settings.privacy_policy_url,
        # Versioned by content, so browsers may keep it for good.
        stylesheet_url=f"{STYLESHEET_PATH}?v={version}")

    async def stylesheet(request: Request) -> Response:
        return Response(css, media_type="text/css", headers={
            "Cache-Control": "public, max-age=31536000, immutable"})

    app.add_api_route(STYLESHEET_PATH, stylesheet, methods=["GET"], include_in_schema=False)
    if theme is not None and (theme / "templates").is_dir():
        app.state.templates = themed_templates(theme / "templates")
    if theme is not None and (theme / "static").is_dir():
        app.mount(THEME_PATH, StaticFiles(directory=theme / "static"), name="theme")


def themed_templates(folder: Path) -> Jinja2Templates:
    """Our environment (extensions, filters, translations) looking in `folder` first."""
    ours: BaseLoader | None = templates.env.loader
    assert ours is not None
    env = templates.env.overlay(loader=ChoiceLoader([FileSystemLoader(folder), ours]))
    return Jinja2Templates(env=env)


def allow_images_from(response: Response, source: str) -> Response:
    """The consent page showing the app's registered logo: images from that one origin too
    (idp.protocol.client_display), the rest of the policy unchanged."""
    directives = [f"{d} {source}" if d.startswith("img-src ") else d for d in CSP.split("; ")]
    response.headers["Content-Security-Policy"] = "; ".join(directives)
    return response
