"""The HTTP/1.1 connection as ``frontdesk serve`` runs it: uvicorn's httptools protocol, with each response's header
block and body leaving the process in one write.

uvicorn writes the header block when the app sends ``http.response.start`` and the body when it sends
``http.response.body``: two ``send`` system calls and two TCP segments for every token response, each costing the
kernel of both ends as much as a small request's whole parsing. Here a write is held until the next write or the end
of the event loop's current turn, whichever comes first, and both then go out together. Nothing else changes: no
byte is reordered or dropped, and a write that has no follower (a streamed response waiting for its next chunk) goes
out at the end of the turn, before the loop waits for anything. See BENCHMARKS.md for what it saved.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["CoalescingTransport", "HttpProtocol"]


class CoalescingTransport:
    """A transport whose writes within one turn of the event loop are joined into one."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data))

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        if self._held:
            held, self._held = self._held, []
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(data) for data in self._held)

    def __getattr__(self, name: str) -> Any:
        # Everything else (reading, flow control, extra info, abort) is the transport's own.
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a ``CoalescingTransport``: pass as ``uvicorn.run(..., http=HttpProtocol)``."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The proxy stands in for the transport wherever uvicorn uses it (it delegates all but writing).
        coalescing = CoalescingTransport(cast(asyncio.Transport, transport), self.loop)
        super().connection_made(cast(asyncio.Transport, coalescing))
