"""A generic OpenID Connect upstream: everything comes from its configuration and discovery.

Its email authority defaults to no domains at all, so a generic upstream never auto-links until
an operator names the domains it owns (requirement 21).
"""

from __future__ import annotations

from idp.federation.base import OidcUpstream


class GenericOidcUpstream(OidcUpstream):
    """The shared base as it is: discovery, JWKS, state, nonce, PKCE S256, RFC 9207."""
