"""Pairwise subject identifiers (OIDC Core §8.1) around the rules in `idp.protocol.pairwise`:
the sector identifier document a client registers, fetched safely and checked (OIDC Dynamic
Client Registration §5), and the way back from a pairwise `sub` an app sends to the account.

Minting a pairwise `sub` is `Context.subject_of` (every room needs it: tokens, events, logout
tokens); the way back is written when a pairwise client's grant is given
(`idp.services.consent.grants.record_consent`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from idp.domain import ClientConfig
from idp.net.fetch import MAX_BODY_BYTES, FetchError, fetch_bytes
from idp.protocol.pairwise import sector_document_problem, sector_of
from idp.services import InvalidInput
from idp.services.context import Context
from idp.store import clients as client_store
from idp.store import pairwise as pairwise_store

# What a `sub` an app sent but no account answers to becomes: it can equal no account id.
UNKNOWN_PREFIX = "pairwise:"


@dataclass(frozen=True)
class SectorDocument:
    """A fetched sector identifier document: its URI and the redirect URIs it lists."""

    uri: str
    redirect_uris: tuple[str, ...]

    def problem(self, uri: str | None, redirect_uris: Sequence[str]) -> str | None:
        """Why a registration with this `sector_identifier_uri` and these redirect URIs is
        not covered by this document (fetched for another URI, or a URI missing)."""
        if uri != self.uri:
            return "the sector_identifier_uri changed while it was checked; try again"
        return sector_document_problem(list(self.redirect_uris), redirect_uris)


async def fetch_sector_document(ctx: Context, uri: str) -> SectorDocument:
    """GET the document with the SSRF-safe fetch (idp.net.fetch: https, public addresses
    only, no redirects, 2 s, 256 KiB); InvalidInput says what is wrong with it."""
    try:
        _, body = await fetch_bytes(ctx.http(), uri, accept="application/json",
                                    max_bytes=MAX_BODY_BYTES, allow_private=ctx.settings.dev_mode)
    except FetchError as exc:
        raise InvalidInput(f"sector_identifier_uri could not be fetched: {exc}") from None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidInput("the sector_identifier_uri document is not JSON") from None
    problem = sector_document_problem(document, ())
    if problem:
        raise InvalidInput(problem)
    return SectorDocument(uri, tuple(document))


async def checked_sector(ctx: Context, columns: dict[str, Any]) -> SectorDocument | None:
    """For a registration's columns (`admin.registration`): its sector identifier document,
    fetched and found to list every redirect URI; None when it names none. Called before
    the registration's unit of work opens: no network wait inside a transaction."""
    uri = columns.get("sector_identifier_uri")
    if uri is None:
        return None
    document = await fetch_sector_document(ctx, uri)
    problem = document.problem(uri, columns.get("redirect_uris") or ())
    if problem:
        raise InvalidInput(problem)
    return document


def _keep_subjects(current: ClientConfig, subject_type: str, sector: str | None) -> None:
    """A changed registration keeps its subject type and sector: otherwise every customer's
    `sub` at the app would change under it (register a new client instead)."""
    if subject_type != current.subject_type:
        raise InvalidInput("subject_type cannot be changed: every customer's sub at this app "
                           "would change; register a new client")
    if sector != current.sector_identifier:
        raise InvalidInput("the sector identifier (the host of sector_identifier_uri, or of "
                           "the redirect URIs) cannot be changed: every customer's sub at "
                           "this app would change; register a new client")


def _unchanged(current: ClientConfig, uri: str | None, redirect_uris: Sequence[str]) -> bool:
    return uri is None or (uri == current.sector_identifier_uri
                           and list(redirect_uris) == list(current.redirect_uris))


def check_subject_change(current: ClientConfig, columns: dict[str, Any],
                         sector: SectorDocument | None) -> None:
    """A changed registration (`columns`) keeps its subjects, and a changed sector
    identifier URI or changed redirect URIs come with the document fetched for them."""
    _keep_subjects(current, columns["subject_type"], columns["sector_identifier"])
    uri = columns["sector_identifier_uri"]
    if _unchanged(current, uri, columns["redirect_uris"]):
        return
    problem = ("the sector_identifier_uri document was not fetched" if sector is None
               else sector.problem(uri, columns["redirect_uris"]))
    if problem:
        raise InvalidInput(problem)


async def sector_for_changes(ctx: Context, current: ClientConfig, changes: dict[str, Any]
                             ) -> SectorDocument | None:
    """The sector identifier document a change of the registration needs checked (a new
    `sector_identifier_uri`, or new redirect URIs under one), fetched before the change's
    unit of work; None when the change needs none. A change refused anyway fetches
    nothing."""
    subject_type = changes.get("subject_type", current.subject_type)
    uri = changes.get("sector_identifier_uri", current.sector_identifier_uri)
    redirect_uris = changes.get("redirect_uris", list(current.redirect_uris))
    if _unchanged(current, uri, redirect_uris):
        return None
    try:
        sector = sector_of(subject_type, redirect_uris, uri)
    except ValueError:
        return None  # the registration rules say why, on the whole change
    _keep_subjects(current, subject_type, sector)
    return await checked_sector(ctx, {"sector_identifier_uri": uri,
                                      "redirect_uris": redirect_uris})


async def account_named(ctx: Context, session: AsyncSession, client: ClientConfig,
                        sub: str, audience: str | None = None) -> str:
    """The account id a `sub` sent by an app names (an id_token_hint's, a `sub` claims
    request's value): as it is for a public client; for a pairwise one, looked up in the
    sector of the client it was issued to (`audience`, the hint's `aud`, else `client`).
    A `sub` no account answers to comes back as a value no account id equals."""
    issued_to = client
    if audience is not None and audience != client.client_id:
        issued_to = await client_store.get_client(session, audience) or client
    if issued_to.sector_identifier is None:
        return sub
    found = await pairwise_store.account_of(session, issued_to.sector_identifier, sub)
    return found if found is not None else f"{UNKNOWN_PREFIX}{sub[:64]}"
