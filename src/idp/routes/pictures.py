"""Profile pictures copied from upstreams whose picture URLs expire (Facebook; federation.md §9
requirement 37), served from our origin at the URL the `picture` claim carries.

Left out of the OpenAPI document: like /static, this is a resource URL handed out inside
claims, not an API operation. The id is unguessable (192 random bits); a new copy gets a new
id, so a response never changes and may be cached.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from idp.services.upstream.profile_import import get_picture
from idp.web.deps import CtxDep

router = APIRouter(prefix="/pictures", include_in_schema=False)

# The bytes are only ever an image: never sniffed as anything else, never run as a document.
_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    # Brand apps show it on their own pages.
    "Cross-Origin-Resource-Policy": "cross-origin",
}
# Personal data: browsers may keep it, shared caches may not (an erased account's picture
# must not outlive it in a CDN).
CACHE = "private, max-age=86400, immutable"


@router.get("/{picture_id}")
async def picture(picture_id: str, ctx: CtxDep) -> Response:
    found = await get_picture(ctx, picture_id)
    if found is None:
        return Response(status_code=404, headers={**_HEADERS, "Cache-Control": "no-store"})
    return Response(found.data, media_type=found.content_type, headers={
        **_HEADERS, "Cache-Control": CACHE, "ETag": f'"{found.id}"'})
