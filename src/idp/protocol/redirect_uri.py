"""Redirect URI registration rules and matching (RFC 6749 §3.1.2, RFC 8252 §7, RFC 9700 §2.1, §4.1).

Matching is simple string comparison (RFC 3986 §6.2.1): no case folding, no normalisation, no
wildcards, no "registered query is a subset". The one exception is RFC 8252 §7.3: a native
client's loopback IP literal redirect URI matches on any port.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import SplitResult, urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "[::1]"})
# RFC 8252 §7.1 private-use schemes are reverse domain names, e.g. com.example.app
_PRIVATE_SCHEME = re.compile(r"^[a-z][a-z0-9+\-]*(\.[a-z0-9+\-]+)+$")
MAX_REDIRECT_URI_LENGTH = 2000


def _split(uri: str) -> SplitResult | None:
    try:
        return urlsplit(uri)
    except ValueError:
        return None


def _loopback_authority(parts: SplitResult) -> str | None:
    """Host part of an http loopback IP literal authority, or None."""
    if parts.scheme != "http" or "@" in parts.netloc:
        return None
    netloc = parts.netloc
    host = netloc.rsplit(":", 1)[0] if not netloc.endswith("]") else netloc
    if host in LOOPBACK_HOSTS:
        port = netloc[len(host) :]
        if port == "" or re.fullmatch(r":[0-9]{1,5}", port):
            return host
    return None


def registration_problem(uri: str, application_type: str) -> str | None:
    """Why `uri` cannot be registered for a client of this application type, or None."""
    if not uri or len(uri) > MAX_REDIRECT_URI_LENGTH or any(c.isspace() for c in uri):
        return "redirect URI is empty, too long or contains white space"
    parts = _split(uri)
    if parts is None or not parts.scheme:
        return "redirect URI must be an absolute URI"
    if parts.fragment or "#" in uri:
        return "redirect URI must not contain a fragment (RFC 6749 §3.1.2)"
    if "@" in parts.netloc:
        return "redirect URI must not contain user information"
    scheme = parts.scheme
    if scheme == "https":
        return None if parts.hostname else "https redirect URI needs a host"
    if scheme == "http":
        # RFC 9700 §2.6 / BCP-23: plain http only for native apps' loopback IP literals.
        if application_type == "native" and _loopback_authority(parts):
            return None
        return "http redirect URIs are allowed only on 127.0.0.1 or [::1] for native clients"
    if application_type == "native" and _PRIVATE_SCHEME.match(scheme):
        return None
    return f"redirect URI scheme {scheme!r} is not allowed"


def redirect_uri_matches(registered: Iterable[str], requested: str, application_type: str) -> bool:
    if len(requested) > MAX_REDIRECT_URI_LENGTH:
        return False
    registered = list(registered)
    if requested in registered:
        return True
    # urlsplit lower-cases the scheme; only the port may differ from what was registered.
    if application_type != "native" or not requested.startswith("http://"):
        return False
    parts = _split(requested)
    if parts is None or parts.fragment:
        return False
    host = _loopback_authority(parts)
    if host is None:
        return False
    for candidate in registered:
        other = _split(candidate)
        if other is None or _loopback_authority(other) != host:
            continue
        # RFC 8252 §7.3: the port may vary; everything else must be identical.
        if (other.path, other.query) == (parts.path, parts.query) and "#" not in requested:
            return True
    return False
