"""The TLS settings of every outbound connection, made once per process.

Building a context loads and parses the whole CA bundle: tens of milliseconds of CPU, which
httpx spends on every client or transport made without one (and a relay on every mail).
Contexts are safe to share between connections and threads; these carry no client
certificate, so sharing changes nothing a peer can see.
"""

from __future__ import annotations

import ssl
from functools import cache

import httpx


@cache
def https_context(*, trust_env: bool = False) -> ssl.SSLContext:
    """What httpx builds for `verify=True`: certifi's CA bundle (or, with `trust_env`, the
    one SSL_CERT_FILE or SSL_CERT_DIR names), hostnames checked."""
    return httpx.create_ssl_context(trust_env=trust_env)


@cache
def smtp_context() -> ssl.SSLContext:
    """The relay's context (SMTPS or STARTTLS): the system's CA store, as smtplib's default."""
    return ssl.create_default_context()
