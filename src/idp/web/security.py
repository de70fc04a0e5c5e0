"""Response headers every page and endpoint carries, and a cap on request bodies (REL-10)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 64 * 1024

# BCP-22 / security.md §0 item 9: no framing, no referrer, no third-party resources.
# form-action is left out on purpose: Chromium applies it to the redirect after a form POST,
# which would block the 303 back to the client's redirect URI.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = [
    (b"x-frame-options", b"DENY"),
    # same-origin: other sites get no Referer, and our own form posts carry a real `Origin`
    # (under no-referrer the Fetch standard sends `Origin: null`, which the origin check of
    # forms must refuse), so browsers without Fetch Metadata still pass it.
    (b"referrer-policy", b"same-origin"),
    (b"x-content-type-options", b"nosniff"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > MAX_BODY_BYTES:
            await _reject_too_large(send)
            return
        if _has_nul(scope):
            await _reject(send, 400, b"The request contains a NUL character")
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    raise BodyTooLarge()
            return message

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                extra = [h for h in _HEADERS if h[0] not in names]
                if b"content-security-policy" not in names:
                    extra.append((b"content-security-policy", CSP.encode()))
                if self.hsts:
                    extra.append((b"strict-transport-security", b"max-age=31536000"))
                message = {**message, "headers": headers + extra}
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except BodyTooLarge:
            await _reject_too_large(send)


class BodyTooLarge(Exception):
    pass


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


# Pages whose parameters go to the database as they are. Protocol endpoints answer a NUL in
# their own vocabulary instead (an authorization error is redirected to the client, a token
# request gets invalid_client), so they check it themselves.
_NUL_CHECKED = ("/account", "/pictures")


def _has_nul(scope: Scope) -> bool:
    """PostgreSQL refuses a NUL in text, and nothing legitimate sends one: refused here once
    rather than as a database error in every account-center route."""
    path = scope.get("path", "")
    if not path.startswith(_NUL_CHECKED):
        return False
    return "\x00" in path or b"%00" in scope.get("query_string", b"").lower()


async def _reject_too_large(send: Send) -> None:
    await _reject(send, 413, b"Request body is too large")


async def _reject(send: Send, status: int, description: bytes) -> None:
    body = b'{"error":"invalid_request","error_description":"' + description + b'"}'
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        # RFC 6749 §5.2: token endpoint answers, errors included, are never cached.
        (b"cache-control", b"no-store"), *_HEADERS, (b"content-security-policy", CSP.encode()),
    ]})
    await send({"type": "http.response.body", "body": body})
