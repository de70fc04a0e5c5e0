"""Profile import with the customer's consent (issue 4 item 6; federation.md §7, §9
requirements 35-38).

Nothing an upstream offers is stored unasked. At an upstream login the attributes the customer
has not decided on yet wait in the interaction (`pending_import`), and the consent page asks,
one unticked box per attribute (GDPR Art. 4(11) and 7; CJEU C-673/17 Planet49: a pre-ticked
box is not consent). The answer is kept per identity (`import_choices`): an attribute declined
is never stored and not asked again; one allowed follows its mapping's sync mode at later
logins (requirement 35). Pictures from an upstream whose URLs expire (Facebook) are copied and
served from our origin (requirement 37).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from idp.crypto.handles import new_handle
from idp.federation.config import SyncMode
from idp.federation.identity import UpstreamIdentity
from idp.net.fetch import FetchError, fetch_bytes
from idp.services.context import Context
from idp.services.profile import values as profile_values
from idp.store.models import Identity, Picture, User
from idp.store.profile import Source

log = logging.getLogger("idp.federation")

PICTURE = "picture"
MAX_PICTURE_BYTES = 512 * 1024
MAX_VALUE_LENGTH = 2048
# Content types we serve back, each with the magic bytes its data must start with.
IMAGE_MAGIC: dict[str, tuple[bytes, ...]] = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),  # and b"WEBP" at offset 8, checked below
}


@dataclass(frozen=True)
class Image:
    content_type: str
    data: bytes


def importable(value: Any) -> bool:
    """Plain values only: a profile attribute is a string, number or boolean."""
    if isinstance(value, str):
        return 0 < len(value) <= MAX_VALUE_LENGTH
    return isinstance(value, int | bool)


def offer(linked: Identity, upstream: UpstreamIdentity, *, new: bool) -> dict[str, Any] | None:
    """What goes into `interactions.pending_import`: the attributes of this login the customer
    has not decided on. A new identity always gets an entry, so that the consent record of this
    interaction carries the scopes the upstream granted (requirement 38)."""
    choices = linked.import_choices or {}
    claims = {name: claim.value for name, claim in upstream.claims.items()
              if name not in choices and importable(claim.value)}
    if not claims and not new:
        return None
    return {"identity_id": linked.id, "alias": upstream.alias, "claims": claims,
            "expiring": sorted(upstream.expiring_claims & claims.keys()),
            "granted_scopes": sorted(upstream.granted_scopes)}


def needs_answer(pending: dict[str, Any] | None) -> bool:
    """Whether the consent page must be shown for this pending import."""
    return bool(pending and pending.get("claims"))


async def sync_allowed(session: AsyncSession, user: User, linked: Identity,
                       upstream: UpstreamIdentity, now: int) -> dict[str, str]:
    """Requirement 35, at a later login: an allowed attribute is updated silently when its
    mapping says `update_every_login` and left alone when `import_once` (unless it was never
    stored, e.g. its picture could not be copied). A claim absent from this login changes
    nothing (requirement 36: a later Apple login never clears the name). Returns the expiring
    attributes (name -> URL) whose copy is to be refreshed once this transaction is over."""
    choices = linked.import_choices or {}
    refresh: dict[str, str] = {}
    for name, claim in upstream.claims.items():
        if choices.get(name) is not True or not importable(claim.value):
            continue
        if name in (linked.profile or {}) and claim.sync is not SyncMode.update_every_login:
            continue
        if name in upstream.expiring_claims:
            refresh[name] = str(claim.value)
        else:
            await store_value(session, user, linked, name, claim.value, now)
    return refresh


async def store_value(session: AsyncSession, user: User, linked: Identity, name: str,
                      value: Any, now: int) -> None:
    """The value in the account's profile (what UserInfo and ID tokens release) with the
    upstream as its provenance (issue 16 item 1) and, with its source and time, in the
    identity's (issue 4 item 6)."""
    if (linked.profile or {}).get(name, {}).get("value") == value and \
            (user.profile or {}).get(name) == value:
        return
    linked.profile = {**(linked.profile or {}),
                      name: {"value": value, "source": linked.alias, "at": now}}
    await profile_values.apply(session, user, {name: value}, Source("upstream", linked.alias),
                               now)


def record_choices(linked: Identity, pending: dict[str, Any], accepted: set[str]) -> set[str]:
    """Keep the answer to every attribute asked; returns the allowed ones."""
    asked = set(pending.get("claims") or {})
    linked.import_choices = {**(linked.import_choices or {}),
                             **{name: name in accepted for name in sorted(asked)}}
    return asked & accepted


async def apply_decision(ctx: Context, session: AsyncSession, pending: dict[str, Any],
                         user_id: str, accepted: set[str], copies: dict[str, Image]
                         ) -> dict[str, Any] | None:
    """The customer answered the import question. Stores the allowed attributes only; returns
    what the consent record notes about it (requirement 38), or None when nothing was asked
    of this account."""
    linked = await session.get(Identity, str(pending.get("identity_id")))
    user = await session.get(User, user_id)
    if linked is None or user is None or linked.user_id != user_id:
        return None
    now = ctx.now()
    allowed = record_choices(linked, pending, accepted)
    claims: dict[str, Any] = pending.get("claims") or {}
    expiring = set(pending.get("expiring") or ())
    for name in sorted(allowed):
        value = claims[name]
        if name in expiring:
            image = copies.get(name)
            if image is None:
                continue  # could not be copied: skipped; tried again at the next login
            value = await save_picture(ctx, session, linked, image, now)
        await store_value(session, user, linked, name, value, now)
    declined = sorted(set(claims) - allowed)
    return {"upstream": {"alias": linked.alias,
                         "granted_scopes": list(pending.get("granted_scopes") or ()),
                         "import": {"allowed": sorted(allowed), "declined": declined}}}


async def copy_allowed_pictures(ctx: Context, pending: dict[str, Any] | None,
                                accepted: set[str]) -> dict[str, Image]:
    """Fetch, before the transaction, the expiring pictures the customer allowed."""
    if not pending:
        return {}
    claims: dict[str, Any] = pending.get("claims") or {}
    copies: dict[str, Image] = {}
    for name in pending.get("expiring") or ():
        if name in accepted and isinstance(claims.get(name), str):
            image = await fetch_image(ctx, claims[name])
            if image is not None:
                copies[name] = image
    return copies


async def refresh_copies(ctx: Context, identity_id: str, urls: dict[str, str]) -> None:
    """Requirement 37 with `update_every_login`: a fresh copy of an allowed expiring picture,
    fetched outside the login's transaction. A failed fetch keeps the copy we have."""
    copies = {name: image for name, url in urls.items()
              if (image := await fetch_image(ctx, url)) is not None}
    if not copies:
        return
    async with ctx.db.transaction() as session:
        linked = await session.get(Identity, identity_id)
        user = await session.get(User, linked.user_id) if linked is not None else None
        if linked is None or user is None or linked.status != "active":
            return
        now = ctx.now()
        for name, image in copies.items():
            if (linked.import_choices or {}).get(name) is True:
                url = await save_picture(ctx, session, linked, image, now)
                await store_value(session, user, linked, name, url, now)


async def fetch_image(ctx: Context, url: str) -> Image | None:
    """The picture at `url`, through the SSRF-safe fetcher, if it is a small JPEG, PNG, GIF or
    WebP whose bytes are what its Content-Type says; None otherwise (the picture is skipped)."""
    try:
        content_type, data = await fetch_bytes(
            ctx.http(), url, accept=", ".join(IMAGE_MAGIC), max_bytes=MAX_PICTURE_BYTES,
            allow_private=ctx.settings.dev_mode)
    except FetchError as exc:
        log.info("profile picture not copied: %s", exc)
        return None
    image = checked_image(content_type, data)
    if image is None:
        log.info("profile picture not copied: not an accepted image")
    return image


def checked_image(content_type: str, data: bytes) -> Image | None:
    kind = content_type.split(";")[0].strip().lower()
    magic = IMAGE_MAGIC.get(kind)
    if magic is None or not data.startswith(magic):
        return None
    if kind == "image/webp" and data[8:12] != b"WEBP":
        return None
    return Image(kind, data)


async def save_picture(ctx: Context, session: AsyncSession, linked: Identity, image: Image,
                       now: int) -> str:
    """Store a copy under a new unguessable id; the earlier copy from the same upstream goes.
    Returns the URL at which we serve it."""
    picture_id = new_handle(24)
    await session.execute(delete(Picture).where(
        Picture.user_id == linked.user_id, Picture.source == linked.alias))
    session.add(Picture(id=picture_id, user_id=linked.user_id, content_type=image.content_type,
                        data=image.data, source=linked.alias, created_at=now))
    return picture_url(ctx, picture_id)


def picture_url(ctx: Context, picture_id: str) -> str:
    return f"{ctx.settings.issuer}/pictures/{picture_id}"


async def get_picture(ctx: Context, picture_id: str) -> Picture | None:
    if not picture_id or len(picture_id) > 64:
        return None
    async with ctx.db.transaction() as session:
        return await session.get(Picture, picture_id)
