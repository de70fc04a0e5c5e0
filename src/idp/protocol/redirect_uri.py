"""Redirect URI registration rules and matching (RFC 6749 §3.1.2, RFC 8252 §7, RFC 9700 §2.1, §4.1).

Matching is simple string comparison (RFC 3986 §6.2.1): no case folding, no normalisation, no
wildcards, no "registered query is a subset". The one exception is RFC 8252 §7.3: a native
client's loopback IP literal redirect URI matches on any port.

Before any comparison a URI must be `well_formed`: Python's `urlsplit` follows the WHATWG rule
and silently drops TAB, CR and LF, and lower-cases the scheme, so a parsed comparison could
accept a URI that differs from the registered one while the redirect then goes to the raw value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import SplitResult, urlsplit, urlunsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "[::1]"})
# Dev mode only: a web app on the developer's machine (the name too, as browsers resolve it).
DEV_LOOPBACK_HOSTS = LOOPBACK_HOSTS | {"localhost"}
# RFC 8252 §7.1 private-use schemes are reverse domain names, e.g. com.example.app
_PRIVATE_SCHEME = re.compile(r"^[a-z][a-z0-9+\-]*(\.[a-z0-9+\-]+)+$")
MAX_REDIRECT_URI_LENGTH = 2000
# RFC 3986 §2: a URI is unreserved and reserved characters and percent-encodings, nothing
# else. White space, controls, non-ASCII (which browsers and IDNA normalise) and the
# characters RFC 3986 excludes (" < > \ ^ ` { | }) never appear in one.
_URI_CHARACTERS = re.compile(r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*")
_PORT = re.compile(r":[0-9]{1,5}")


def well_formed(uri: str) -> bool:
    """Whether `uri` is made only of RFC 3986 characters and `urlsplit` reads it without
    rewriting anything (scheme case, an empty query or fragment, stripped characters)."""
    if not _URI_CHARACTERS.fullmatch(uri):
        return False
    try:
        return urlunsplit(urlsplit(uri)) == uri
    except ValueError:
        return False


def _split(uri: str) -> SplitResult | None:
    """The parts of a `well_formed` URI, or None: nothing is parsed that `urlsplit` would
    silently rewrite."""
    if not well_formed(uri):
        return None
    return urlsplit(uri)


def _loopback_authority(parts: SplitResult, hosts: frozenset[str] = LOOPBACK_HOSTS
                        ) -> str | None:
    """Host part of an http loopback IP literal authority (or one of `hosts`), or None."""
    if parts.scheme != "http" or "@" in parts.netloc:
        return None
    netloc = parts.netloc
    host = netloc.rsplit(":", 1)[0] if not netloc.endswith("]") else netloc
    if host in hosts:
        port = netloc[len(host) :]
        if port == "" or (_PORT.fullmatch(port) and int(port[1:]) <= 65535):
            return host
    return None


def registration_problem(uri: str, application_type: str, dev_mode: bool = False
                         ) -> str | None:
    """Why `uri` cannot be registered for a client of this application type, or None. In dev
    mode a web client may also register a plain-http loopback URI, for an app on the
    developer's machine; it matches exactly (`redirect_uri_matches`), port included."""
    if not uri or len(uri) > MAX_REDIRECT_URI_LENGTH or any(c.isspace() for c in uri):
        return "redirect URI is empty, too long or contains white space"
    if not well_formed(uri):
        return ("redirect URI must be written in RFC 3986 characters exactly as it will be "
                "used (no control or non-ASCII characters, a lower-case scheme, no empty "
                "query or fragment)")
    parts = urlsplit(uri)
    if not parts.scheme:
        return "redirect URI must be an absolute URI"
    if parts.fragment or "#" in uri:
        return "redirect URI must not contain a fragment (RFC 6749 §3.1.2)"
    if "@" in parts.netloc:
        return "redirect URI must not contain user information"
    if "*" in parts.netloc:
        # RFC 9700 §2.1: exact matching; a '*' would only ever match itself, and a reader
        # would take it for the pattern it is not.
        return "redirect URI must not contain a wildcard"
    scheme = parts.scheme
    if scheme == "https":
        return None if parts.hostname else "https redirect URI needs a host"
    if scheme == "http":
        # RFC 9700 §2.6 / BCP-23: plain http only for native apps' loopback IP literals.
        if application_type == "native" and _loopback_authority(parts):
            return None
        if application_type == "web" and dev_mode and _loopback_authority(
                parts, DEV_LOOPBACK_HOSTS):
            return None
        return ("http redirect URIs are allowed only on 127.0.0.1 or [::1] for native clients "
                "(and on localhost, 127.0.0.1 or [::1] for web clients in dev mode)")
    if application_type == "native" and _PRIVATE_SCHEME.match(scheme):
        return None
    return f"redirect URI scheme {scheme!r} is not allowed"


def endpoint_problem(uri: str) -> str | None:
    """Why `uri` cannot be a client's notification endpoint (Back-Channel Logout §2.2, RFC 8935
    push), or None: an absolute https URI, or plain http on a loopback IP literal for an app
    on the developer's machine; no user information or fragment."""
    parts = _split(uri) if len(uri) <= MAX_REDIRECT_URI_LENGTH else None
    if parts is None:
        return "notification endpoints must be RFC 3986 URIs written as they will be used"
    if "@" in parts.netloc or parts.fragment or "#" in uri:
        return "notification endpoints must not contain user information or a fragment"
    if (parts.scheme == "https" and parts.hostname) or _loopback_authority(parts):
        return None
    return "notification endpoints must use https"


def exactly_registered(registered: Iterable[str], requested: str) -> bool:
    """Simple string comparison (RFC 3986 §6.2.1) of a well-formed URI; for the URIs that
    know no port exception, such as `post_logout_redirect_uri`."""
    return (len(requested) <= MAX_REDIRECT_URI_LENGTH and well_formed(requested)
            and requested in registered)


def redirect_uri_matches(registered: Iterable[str], requested: str, application_type: str,
                         dev_mode: bool = False) -> bool:
    registered = list(registered)
    if exactly_registered(registered, requested):
        # A web client's plain-http URI can only have been registered in dev mode, and
        # outside it the code is never sent over plain http (RFC 9700 §2.6).
        return dev_mode or application_type == "native" or not requested.startswith("http:")
    if len(requested) > MAX_REDIRECT_URI_LENGTH:
        return False
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
