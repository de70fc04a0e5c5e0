"""Reading a response body no larger than a limit (REL-10): the declared length is checked
first, then the bytes actually received, so a lying or absent Content-Length cannot get past."""

from __future__ import annotations

import httpx


class BodyTooLarge(ValueError):
    pass


async def read_capped(response: httpx.Response, limit: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body exceeds {limit} bytes")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(f"the body exceeds {limit} bytes")
    return bytes(body)
