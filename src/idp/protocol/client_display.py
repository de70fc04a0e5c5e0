"""Client metadata shown to the customer on the consent page (OIDC Dynamic Client
Registration 1.0 §2, RFC 7591 §2: `logo_uri`, `policy_uri`, `tos_uri`): where they may point,
and the Content-Security-Policy source that lets the consent page show the logo.

The logo is loaded by the browser from the app's own host, admitted for the consent page only
(`img-src` of that one origin), rather than fetched and re-served from our origin: we never
fetch a URL an app chose, and never serve its bytes as ours.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

DISPLAY_URIS = ("logo_uri", "policy_uri", "tos_uri")
MAX_DISPLAY_URI_LENGTH = 2000
# RFC 3986 §2: the characters a URI is written in (no spaces, quotes or angle brackets).
_URI_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def display_uri_problem(name: str, uri: str, dev_mode: bool) -> str | None:
    """Why `uri` cannot be the client's `name` (one of DISPLAY_URIS), or None: an absolute
    https URL (OIDC Registration §2: these are shown to the End-User), or plain http on
    loopback for an app on the developer's machine in dev mode; no user information."""
    if len(uri) > MAX_DISPLAY_URI_LENGTH or not _URI_CHARACTERS.fullmatch(uri):
        return f"{name} must be a URL of at most {MAX_DISPLAY_URI_LENGTH} characters"
    parts = urlsplit(uri)
    try:
        host, _ = parts.hostname, parts.port
    except ValueError:
        return f"{name} has an invalid port"
    if not host or "@" in parts.netloc:
        return f"{name} must be an absolute URL with a host and no user information"
    if not (_HOST_NAME.fullmatch(host) or _is_ip(host)):
        return f"{name} has an invalid host"
    if parts.scheme == "https" or (parts.scheme == "http" and dev_mode and _loopback(host)):
        return None
    return f"{name} must use https"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def image_source(logo_uri: str) -> str | None:
    """The CSP source expression (CSP3 §2.3.1 host-source) admitting a registered logo: its
    scheme, host and port, nothing of its path, so the header cannot be bent by it. None for
    a value that would not pass registration (one written to the database by other means)."""
    if display_uri_problem("logo_uri", logo_uri, dev_mode=True):
        return None
    parts = urlsplit(logo_uri)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme}://{host}{port}"
