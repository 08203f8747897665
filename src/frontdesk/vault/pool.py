"""The proxy's connections to providers: httpcore's HTTP/1.1 connections, kept per origin, reached directly.

A proxied call through ``httpx.AsyncClient.send`` cost about 1.9 ms of CPU, most of it outside frontdesk: httpx's
request and URL models, its transport's wrapping of every request and response, and httpcore's connection pool,
which scans every connection it holds several times a call (for each, whether it is idle, expired, and readable)
and waits on an anyio event for its turn (BENCHMARKS.md, issue 15). A proxied call needs none of that: one
origin, one request, the answer read whole. So the proxy's calls go to :class:`Connections`, which keeps
httpcore's own HTTP/1.1 connections (h11 does the protocol; their streams are the loop's: vault/streams.py) in a
list per origin: a call takes the last one it put back, checks that one alone (keep-alive expiry; a provider that
closed it makes it readable), and puts it back after the answer, up to the keep-alive limit. The number of
connections is bounded by ``max_connections``; past it a call waits for one, up to the pool timeout. Redirects are
never followed. A connection the provider drops between the check and the request fails the call, as it did
through httpx (httpcore retries no request).

The app builds :class:`Connections` where it builds its client to providers (web/app.py), from the very settings
it gives that client: its ``httpx.Timeout``, its ``httpx.Limits``, its TLS context (verification on) and the
client's default headers; only httpx's and httpcore's public API is used. The client, a :class:`ProviderClient`,
carries them to the proxy (vault/proxy.py) along every path the client already takes, and closing it closes them.
Any other client (a test's mock transport, an embedding without the app) carries none, and neither does the app's
when the environment names a proxy (:func:`proxied_by_environment`): the proxy then goes through httpx.
Measured (bench/hotpath.py g_vault_proxy, before and after back to back): 5.44M → 3.33M instructions a call (all
threads; 3.59M → 1.76M on the event loop), 1.57 → 0.71 ms of CPU.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import sys
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from types import TracebackType
from typing import NamedTuple
from urllib.parse import urlsplit
from urllib.request import getproxies

import httpcore
import httpx

from .streams import AsyncioBackend, readable

__all__ = ["Answer", "Connections", "ProviderClient", "ResponseTooLarge", "proxied_by_environment", "readable"]

Origin = tuple[bytes, bytes, int]  # scheme, host, port
_HTTPX_LOG = logging.getLogger("httpx")

# httpcore's errors as httpx raises them (httpx._transports.default), so the proxy maps one family of errors.
_ERRORS: dict[type[Exception], type[httpx.TransportError]] = {
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    httpcore.UnsupportedProtocol: httpx.UnsupportedProtocol,
}


class ResponseTooLarge(Exception):
    """The provider answered with more than the proxy will hold (``max_proxy_body``)."""


class Answer(NamedTuple):
    status: int
    headers: list[tuple[str, str]]  # names in lower case, as httpx's ``multi_items``
    content: bytes  # decoded from any content-encoding


class Connections:
    """The proxy's keep-alive connections (see the module docstring), built from the settings of the app's client
    to providers: ``tls`` is the context given to that client as ``verify``, ``limits`` and ``timeout`` its own,
    ``headers`` its default headers (``client.headers``)."""

    def __init__(
        self, tls: ssl.SSLContext, limits: httpx.Limits, timeout: httpx.Timeout, headers: httpx.Headers
    ) -> None:
        self.limits = limits
        self.timeouts = timeout.as_dict()
        # The client's default headers (User-Agent, Accept-Encoding…), as httpx would send them under the call's own.
        self.headers = [
            (name.encode("latin-1"), name.lower(), value.encode("latin-1")) for name, value in headers.items()
        ]
        self._ssl = tls
        self._backend = AsyncioBackend()  # not httpcore's default (anyio's): vault/streams.py
        # As httpcore's pool reads httpx.Limits: None bounds nothing, and no more are kept than may be open.
        most, keep = limits.max_connections, limits.max_keepalive_connections
        self._max = sys.maxsize if most is None else most
        self._keep = min(self._max, sys.maxsize if keep is None else keep)
        self._expiry = limits.keepalive_expiry
        self._idle: dict[Origin, list[httpcore.AsyncHTTP11Connection]] = {}
        self._kept = 0  # idle connections, all origins
        self._open = 0  # connections, idle or in use
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._closed = False  # by aclose: a connection in use then is closed when its call ends, not kept

    async def send(self, method: str, url: str, headers: Iterable[tuple[str, str]], body: bytes, limit: int) -> Answer:
        """``method url`` with ``headers`` over the client's default ones (a name given here replaces the default
        of that name), the answer read whole, decoded, up to ``limit`` bytes (:class:`ResponseTooLarge` past it).
        httpx's errors, as ``client.send`` raises them."""
        parts = urlsplit(url)
        scheme, port = parts.scheme, parts.port
        default = 443 if scheme == "https" else 80
        netloc = parts.netloc.rsplit(":", 1)[0] if port == default else parts.netloc  # as httpx: no default port
        origin = (scheme.encode("ascii"), (parts.hostname or "").encode("ascii"), port or default)
        target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        given = {name.lower(): (name.encode("latin-1"), value.encode("latin-1")) for name, value in headers}
        wire = [(b"Host", netloc.encode("ascii"))]
        wire.extend((name, value) for name, lower, value in self.headers if lower not in given)
        wire.extend(given.values())
        if body or method in ("POST", "PUT", "PATCH"):
            wire.append((b"Content-Length", str(len(body)).encode()))
        request = httpcore.Request(
            method.encode("ascii"),
            httpcore.URL(scheme=origin[0], host=origin[1], port=origin[2], target=target.encode("ascii")),
            headers=wire,
            content=body,
            extensions={"timeout": self.timeouts},
        )
        try:
            return await self._call(origin, request, url, limit)
        except tuple(_ERRORS) as exc:
            mapped = next(_ERRORS[kind] for kind in type(exc).__mro__ if kind in _ERRORS)
            raise mapped(str(exc)) from exc

    async def _call(self, origin: Origin, request: httpcore.Request, url: str, limit: int) -> Answer:
        connection = await self._acquire(origin)
        try:
            response = await connection.handle_async_request(request)
            try:
                _request_line(request, url, response)
                content = await _read(response, limit)
            finally:
                await response.aclose()  # back to idle, or closed when the answer was not read to its end
        except BaseException:
            await self._close(connection)
            raise
        await self._release(origin, connection)
        headers = [(name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in response.headers]
        return Answer(response.status, headers, content)

    async def _acquire(self, origin: Origin) -> httpcore.AsyncHTTP11Connection:
        """The last connection put back for ``origin`` that is still good, or a new one when the bound allows (an
        idle connection of another origin is closed for it at the bound, as httpcore does), or the next one freed."""
        while True:
            idle = self._idle.get(origin)
            while idle:
                connection = idle.pop()
                self._kept -= 1
                if not connection.has_expired():
                    return connection
                await self._close(connection)
            if self._open < self._max:
                break
            if self._kept:
                await self._close(self._oldest_idle())
            else:
                await self._wait()
        self._open += 1
        try:
            return await self._connect(origin)
        except BaseException:
            self._open -= 1
            self._wake()
            raise

    async def _connect(self, origin: Origin) -> httpcore.AsyncHTTP11Connection:
        """As ``httpcore.AsyncHTTPConnection`` connects for HTTP/1.1: TCP, then TLS with the app's context."""
        scheme, host, port = origin
        timeout = self.timeouts.get("connect")
        stream = await self._backend.connect_tcp(host.decode("ascii"), port, timeout)
        if scheme == b"https":
            self._ssl.set_alpn_protocols(["http/1.1"])
            stream = await stream.start_tls(self._ssl, host.decode("ascii"), timeout)
        return httpcore.AsyncHTTP11Connection(httpcore.Origin(scheme, host, port), stream, self._expiry)

    async def _release(self, origin: Origin, connection: httpcore.AsyncHTTP11Connection) -> None:
        if connection.is_idle() and self._kept < self._keep and not self._closed:
            self._idle.setdefault(origin, []).append(connection)
            self._kept += 1
            self._wake()
        else:
            await self._close(connection)

    async def _close(self, connection: httpcore.AsyncHTTP11Connection) -> None:
        self._open -= 1
        self._wake()
        await connection.aclose()

    def _oldest_idle(self) -> httpcore.AsyncHTTP11Connection:
        idle = next(kept for kept in self._idle.values() if kept)
        self._kept -= 1
        return idle.pop(0)

    async def _wait(self) -> None:
        """Until a connection is put back or closed, or httpcore's ``PoolTimeout`` after the pool timeout."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            async with asyncio.timeout(self.timeouts.get("pool")):
                await waiter
        except TimeoutError:
            raise httpcore.PoolTimeout("no connection to the provider came free in time") from None
        finally:
            if not waiter.done():
                self._waiting.remove(waiter)

    def _wake(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        """Close the idle connections; those in use close when their call ends."""
        self._closed = True
        idle = [connection for kept in self._idle.values() for connection in kept]
        self._idle.clear()
        self._kept = 0
        for connection in idle:
            await self._close(connection)

    async def __aenter__(self) -> Connections:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.aclose()


class ProviderClient(httpx.AsyncClient):
    """The app's ``httpx.AsyncClient`` to providers, carrying the proxy's :class:`Connections` that the app built
    from the same settings (web/app.py), or None where the proxy must go through httpx. It travels wherever the
    client does (the proxy route, the MCP tools), so no signature in between names the connections."""

    connections: Connections | None = None

    async def aclose(self) -> None:
        try:
            if self.connections is not None:
                await self.connections.aclose()
        finally:
            await super().aclose()


def _request_line(request: httpcore.Request, url: str, response: httpcore.Response) -> None:
    """httpx's INFO line for each request it sends, the same words through the same logger (whose filter takes the
    query out: log_filters.QUERY_LOGGERS), so that an operator reading the log sees the proxy's calls as before."""
    if _HTTPX_LOG.isEnabledFor(logging.INFO):
        version, reason = response.extensions["http_version"], response.extensions["reason_phrase"]
        method = request.method.decode("ascii")
        status = response.status
        _HTTPX_LOG.info(
            'HTTP Request: %s %s "%s %d %s"',
            method,
            url,
            version.decode("ascii", "ignore"),
            status,
            reason.decode("ascii", "ignore"),
        )


async def _read(response: httpcore.Response, limit: int) -> bytes:
    """The answer's body, decoded as httpx decodes it (``aiter_bytes``), at most ``limit`` bytes of it: the answer
    is held whole so that the credential can be stripped from it."""
    stream = response.stream
    assert isinstance(stream, AsyncIterable)
    chunks: AsyncIterable[bytes] = stream
    if any(
        name.lower() == b"content-encoding" and value.strip().lower() != b"identity" for name, value in response.headers
    ):
        chunks = httpx.Response(response.status, headers=response.headers, stream=_Raw(stream)).aiter_bytes()
    parts, size = [], 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(f"the provider's answer is larger than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


class _Raw(httpx.AsyncByteStream):
    """An encoded body as httpx's ``Response`` reads it, for its decoders."""

    def __init__(self, chunks: AsyncIterable[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.chunks:
            yield chunk


def proxied_by_environment() -> bool:
    """Whether a client with ``trust_env`` (httpx's default) sends through a proxy the environment names
    (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY; NO_PROXY=* turns them off), read as httpx reads them: the proxy's own
    connections would go around that proxy, so the app gives its client none and the proxy goes through httpx."""
    found = getproxies()
    if "*" in (host.strip() for host in found.get("no", "").split(",")):
        return False
    return any(found.get(scheme) for scheme in ("http", "https", "all"))
