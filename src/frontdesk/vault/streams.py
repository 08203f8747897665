"""httpcore's network streams for the proxy's connections (vault/pool.py), on the running asyncio loop's own
transports: TCP, TLS through ``loop.start_tls``, read and write timeouts, httpcore's errors.

httpcore's default backend goes through anyio, whose socket stream takes a turn of the event loop (a checkpoint)
before every read and every write and wraps each in a cancel scope (``fail_after``): on a proxied call that is
five loop turns and five cancel scopes beyond the wait for the provider itself, and its TLS stream runs the TLS
record layer through a ``MemoryBIO`` in Python. Here a read returns what the protocol already holds or waits for
the next ``data_received`` under one timer, a write hands the bytes to the transport (waiting only when it asks
for a pause), and TLS is the loop's own (uvloop's, in C, under ``frontdesk serve``). The protocol (HTTP/1.1) stays
httpcore's and h11's.
"""

from __future__ import annotations

import asyncio
import select
import socket
import ssl
import sys
from collections.abc import Iterable
from typing import Any, cast

import httpcore

__all__ = ["AsyncioBackend", "readable"]

_HIGH = 256 * 1024  # bytes held unread before the transport stops reading (flow control)


class _Wire(asyncio.Protocol):
    """What the transport delivers, held until read; one waiter at a time (a connection serves one request)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.data = bytearray()
        self.eof = False
        self.error: Exception | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.paused = False  # writing: the transport's buffer is full
        self.held = False  # reading: ours is
        self.drained: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        self.data += data
        if len(self.data) > _HIGH and self.transport is not None and not self.held:
            self.held = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof, self.error = True, exc
        self.paused = False
        self._wake()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._wake()

    async def wait(self, timeout: float | None, timed_out: type[Exception], *, drain: bool = False) -> None:
        """Until the next delivery (or, with ``drain``, until writing may go on), ``timed_out`` after ``timeout``."""
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        if drain:
            self.drained = waiter
        else:
            self.waiter = waiter
        timer = None if timeout is None else loop.call_later(timeout, _expire, waiter)
        try:
            await waiter
        except TimeoutError:
            raise timed_out("the provider did not answer in time") from None
        finally:
            if timer is not None:
                timer.cancel()
            self.waiter = self.drained = None

    def _wake(self) -> None:
        for waiter in (self.waiter, self.drained):
            if waiter is not None and not waiter.done():
                waiter.set_result(None)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(self, transport: asyncio.Transport, wire: _Wire) -> None:
        self._transport, self._wire = transport, wire

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        wire = self._wire
        if not wire.data and not wire.eof:
            await wire.wait(timeout, httpcore.ReadTimeout)
        if wire.data:
            chunk = bytes(wire.data[:max_bytes])
            del wire.data[:max_bytes]
            if wire.held and len(wire.data) <= _HIGH and not wire.eof:
                wire.held = False
                self._transport.resume_reading()
            return chunk
        if wire.error is not None:
            raise httpcore.ReadError(str(wire.error) or type(wire.error).__name__)
        return b""  # closed by the provider: httpcore tells a clean end from a cut-off answer

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        self._transport.write(buffer)
        while self._wire.paused:
            await self._wire.wait(timeout, httpcore.WriteTimeout, drain=True)

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            upgraded = await loop.start_tls(
                self._transport, self._wire, ssl_context, server_hostname=server_hostname, ssl_handshake_timeout=timeout
            )
        except TimeoutError as exc:
            self._transport.close()
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except (OSError, ssl.SSLError, ConnectionError) as exc:  # a certificate that does not verify among them
            self._transport.close()
            raise httpcore.ConnectError(str(exc)) from exc
        self._wire.transport = cast(asyncio.Transport, upgraded)
        return AsyncioStream(self._wire.transport, self._wire)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # an idle connection: anything to read, or the end, means the provider closed it
            wire = self._wire
            return wire.eof or bool(wire.data) or readable(self._transport.get_extra_info("socket"))
        names = {"ssl_object": "ssl_object", "socket": "socket", "client_addr": "sockname", "server_addr": "peername"}
        return self._transport.get_extra_info(names[info]) if info in names else None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """TCP connections of the running loop (``TCP_NODELAY`` set, as asyncio sets it), as httpcore's backends open
    them: its errors, the connect timeout, the socket options."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = None if local_address is None else (local_address, 0)
        try:
            async with asyncio.timeout(timeout):
                transport, wire = await loop.create_connection(_Wire, host, port, local_addr=local)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        for option in socket_options or ():
            transport.get_extra_info("socket").setsockopt(*option)
        return AsyncioStream(transport, wire)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def readable(sock: socket.socket | None) -> bool:
    """Whether ``sock`` has something to read (for an idle connection: the peer closed it), without reading: what
    ``httpcore._utils.is_socket_readable`` answers. A socket that is gone counts as readable (closed)."""
    fd = None if sock is None else sock.fileno()
    if fd is None or fd < 0:
        return True
    if sys.platform == "win32" or getattr(select, "poll", None) is None:
        ready, _, _ = select.select([fd], [], [], 0)
        return bool(ready)
    poll = select.poll()
    poll.register(fd, select.POLLIN)
    return bool(poll.poll(0))
