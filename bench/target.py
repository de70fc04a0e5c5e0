"""What a load scenario needs of a running OpenID Provider, ours or a peer's, so the same
scenarios and the same CPU accounting run against both in one benchmark run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class UserTokens:
    """One customer's tokens from a real authorization code flow (with `offline_access`, so
    the refresh token rotates)."""

    access_token: str
    refresh_token: str
    id_token: str


@dataclass(frozen=True)
class Target:
    name: str
    issuer: str  # http://127.0.0.1:PORT
    metadata: dict[str, Any]  # the discovery document
    # A confidential client allowed client_credentials, authenticating with client_secret_basic.
    cc_client: tuple[str, str]
    # The confidential web app the customers signed in to (client_secret_basic): it redeems
    # and refreshes their tokens and introspects them.
    code_client: tuple[str, str]
    # Processes whose CPU time counts as the server's (the workers and their parent; the
    # database's processes are counted apart).
    server_pids: Callable[[], list[int]]
    # `n` customers, each signed in once through the code flow: their tokens.
    user_tokens: Callable[[int], list[UserTokens]]
