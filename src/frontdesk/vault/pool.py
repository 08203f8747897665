"""The proxy's connections to providers: httpcore's pool, with an idle connection's check made cheap.

Each time httpcore's pool hands out or takes back a connection (twice a proxied call) it asks every idle connection
whether its socket is readable, which on a keep-alive connection means the provider has closed it. Its anyio
backend finds the socket again for each question: a function-level import, a ``getpeername`` system call and six
closures built by anyio's socket attributes, before the ``poll`` that answers it. With ten connections kept that
was a quarter of the proxy's CPU per call (BENCHMARKS.md). Here each connection keeps its socket from the start,
and a ``poll`` object registered for it, and answers with the same ``poll(0)``: the same answer, found directly.
Everything else is httpcore's own.
"""

from __future__ import annotations

import select
import socket
import ssl
import sys
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

__all__ = ["checked_idle", "readable"]


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


_POLL = getattr(select, "poll", None) if sys.platform != "win32" else None


class _Stream(httpcore.AsyncNetworkStream):
    """A connection of the backend this wraps, which keeps its socket, and a ``poll`` object registered for it, for
    the pool's idle check."""

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        self._socket = stream.get_extra_info("socket")
        self._fd = -1
        self._poll: Any = None

    def _readable(self) -> bool:
        fd = -1 if self._socket is None else self._socket.fileno()
        if fd < 0 or _POLL is None:
            return readable(self._socket)
        if fd != self._fd:  # the first check (or a socket that changed its descriptor): register it
            self._poll = _POLL()
            self._poll.register(fd, select.POLLIN)
            self._fd = fd
        return bool(self._poll.poll(0))

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return self._readable()
        return self._stream.get_extra_info(info)


class _Backend(httpcore.AsyncNetworkBackend):
    """The pool's own network backend (httpcore's choice for the running event loop), its streams wrapped."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend) -> None:
        self.backend = backend

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self.backend.connect_tcp(host, port, timeout, local_address, socket_options))

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self.backend.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self.backend.sleep(seconds)


def checked_idle(client: httpx.AsyncClient) -> None:
    """Give the pool of ``client``'s own transport (not a proxy's mount, not a test's mock) the backend above, once;
    its connections made from then on answer the idle check directly. A transport of another shape is left as it
    is: the check then costs what httpcore's costs, with the same answer."""
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    if type(pool) is httpcore.AsyncConnectionPool:
        backend = getattr(pool, "_network_backend", None)
        if isinstance(backend, httpcore.AsyncNetworkBackend) and not isinstance(backend, _Backend):
            pool._network_backend = _Backend(backend)
