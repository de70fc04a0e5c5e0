"""A real local HTTP receiver for back-channel logout tokens and events: an app's endpoint
that can be down, then come up on the same port. It listens on 127.0.0.1, which a dispatcher
reaches only as in dev mode (`Dispatcher(..., allow_private=True)`)."""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import parse_qs

# Ports handed out, each held by a bound socket that never listens, for the life of the test
# process. A port found free and let go was taken in between by a busy CI run's other
# processes (an outgoing connection's own port, another test's server) before the server it
# was meant for bound it ("address already in use"). While it is held, the kernel gives the
# port to no one else: not to a bind to port 0, not to an outgoing connection. A server can
# still bind it, since both sockets allow address reuse and the holder does not listen
# (asyncio, aiosmtpd and uvicorn all set SO_REUSEADDR), and a client that connects while no
# server listens is refused at once, as on a free port.
_HELD: list[socket.socket] = []


def free_port() -> int:
    """A port on 127.0.0.1 that stays free for whoever binds it with address reuse."""
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", 0))
    _HELD.append(holder)
    return int(holder.getsockname()[1])


class Receiver:
    def __init__(self, port: int | None = None, status: int = 200) -> None:
        self.port = port or free_port()
        self.status = status
        self.received: list[dict[str, list[str]]] = []
        self.bodies: list[tuple[str, bytes]] = []  # (content type, raw body)
        self.arrived = asyncio.Event()
        self._server: asyncio.base_events.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/backchannel"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            content_type = ""
            for line in head.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                if name.lower() == "content-length":
                    length = int(value.strip())
                if name.lower() == "content-type":
                    content_type = value.strip()
            body = await reader.readexactly(length) if length else b""
            self.bodies.append((content_type, body))
            if content_type.startswith("application/x-www-form-urlencoded"):
                self.received.append(parse_qs(body.decode()))
            self.arrived.set()
            writer.write(f"HTTP/1.1 {self.status} X\r\nContent-Length: 0\r\n"
                         "Connection: close\r\n\r\n".encode())
            await writer.drain()
        finally:
            writer.close()
