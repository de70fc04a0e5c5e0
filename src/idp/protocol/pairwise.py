"""Pairwise subject identifiers (OIDC Core §8.1) as plain rules: which sector a client is in,
what a sector identifier document must hold (OIDC Dynamic Client Registration §5), and the
`sub` a pairwise client knows an account by.

A pairwise `sub` is a keyed hash of the sector and the account id: the same in one sector,
unrelated across sectors, and nobody without the key can tell which account it names.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import urlsplit

PUBLIC, PAIRWISE = "public", "pairwise"
SUBJECT_TYPES = (PUBLIC, PAIRWISE)
MAX_SECTOR_URIS = 100  # redirect URIs a sector identifier document may list
MAX_SECTOR_LENGTH = 253  # a DNS name


def _host(uri: str) -> str | None:
    try:
        host = urlsplit(uri).hostname
    except ValueError:
        return None
    return host.lower() if host else None


def sector_uri_problem(uri: str, dev_mode: bool) -> str | None:
    """OIDC Registration §2: `sector_identifier_uri` is a URL using the https scheme (plain
    http only for a developer's machine in dev mode); its host is the sector."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "sector_identifier_uri is not a URL"
    if parts.scheme != "https" and not (dev_mode and parts.scheme == "http"):
        return "sector_identifier_uri must use https"
    if not parts.hostname or parts.username or parts.password or parts.fragment:
        return "sector_identifier_uri needs a host, and no user information or fragment"
    if len(parts.hostname) > MAX_SECTOR_LENGTH:
        return "sector_identifier_uri's host is too long"
    return None


def sector_of(subject_type: str, redirect_uris: Iterable[str],
              sector_identifier_uri: str | None) -> str | None:
    """The client's sector identifier (OIDC Core §8.1): the host of its
    `sector_identifier_uri`, else the one host of its redirect URIs; None for a public client.
    Raises ValueError saying why a pairwise client has none."""
    if subject_type == PUBLIC:
        return None
    if subject_type != PAIRWISE:
        raise ValueError("subject_type must be public or pairwise")
    if sector_identifier_uri is not None:
        host = _host(sector_identifier_uri)
        if host is None:
            raise ValueError("sector_identifier_uri needs a host")
        return host
    hosts = {_host(uri) for uri in redirect_uris}
    if len(hosts) != 1 or None in hosts:
        # §8.1: "If there are multiple hostnames in the registered redirect_uris, the Client
        # MUST register a sector_identifier_uri."
        raise ValueError("a pairwise client whose redirect URIs are not all on one host "
                         "must register a sector_identifier_uri")
    host = hosts.pop()
    assert host is not None
    return host


def sector_document_problem(document: object, redirect_uris: Iterable[str]) -> str | None:
    """OIDC Registration §5: the document is a JSON array of redirect URIs that includes
    every redirect URI the client registers."""
    if not isinstance(document, list) or not all(isinstance(v, str) for v in document):
        return "the sector_identifier_uri document must be a JSON array of redirect URIs"
    if len(document) > MAX_SECTOR_URIS:
        return f"the sector_identifier_uri document lists more than {MAX_SECTOR_URIS} URIs"
    listed = set(document)
    missing = [uri for uri in redirect_uris if uri not in listed]
    if missing:
        return (f"redirect URI {missing[0][:200]} is not in the sector_identifier_uri "
                "document")
    return None


def pairwise_subject(key: bytes, sector: str, account_id: str) -> str:
    """OIDC Core §8.1: a `sub` for the account in this sector, computed with a key of ours
    (HMAC-SHA256 over the sector and the account id, base64url): stable, not reversible, and
    different in every other sector."""
    mac = hmac.new(key, f"{sector}\x00{account_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def subject_columns(subject_type: str, redirect_uris: Iterable[str],
                    sector_identifier_uri: str | None, dev_mode: bool) -> dict[str, str | None]:
    """A registration's subject columns, or ValueError saying which rule they break."""
    if subject_type not in SUBJECT_TYPES:
        raise ValueError("subject_type must be public or pairwise")
    if sector_identifier_uri is not None:
        problem = sector_uri_problem(sector_identifier_uri, dev_mode)
        if problem:
            raise ValueError(problem)
    return {"subject_type": subject_type, "sector_identifier_uri": sector_identifier_uri,
            "sector_identifier": sector_of(subject_type, redirect_uris, sector_identifier_uri)}
