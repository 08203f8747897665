"""The HTTP/1.1 connection as ``frontdesk serve`` runs it: uvicorn's httptools protocol, with each response's header
block and body leaving the process in one write.

uvicorn writes the header block when the app sends ``http.response.start`` and the body when it sends
``http.response.body``: two ``send`` system calls and two TCP segments for every token response, each costing the
kernel of both ends as much as a small request's whole parsing. Here a write is held until the next write or the end
of the event loop's current turn, whichever comes first, and both then go out together. Nothing else changes: no
byte is reordered or dropped, and a write that has no follower (a streamed response waiting for its next chunk) goes
out at the end of the turn, before the loop waits for anything. See BENCHMARKS.md for what it saved.

Each response's header block is built from header lines checked once per process (``ResponseCycle``), where
uvicorn checks every header of every response against two regular expressions.

The protocol also bounds what a client can hold (``[server]`` in the configuration): uvicorn has a keep-alive
timeout but none for reading a request, so a connection trickling its header lines, or half a body, stayed open for
ever, and a few hundred of them used up the process's file descriptors. Here a request's header block must arrive
within ``header_timeout`` seconds of its first byte (or of the connection being opened), its body within
``body_timeout`` of the header block; a late one is answered 408 and closed. A worker keeps at most
``max_connections`` open, below its descriptor limit, and answers any more 503 at once. The keep-alive timeout
(``keepalive_timeout``: how long an idle connection stays open after a response) is kept by the same timer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import resource
from dataclasses import replace
from typing import Any, Literal, cast

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.server import ServerState

from .config import ServerLimits

__all__ = [
    "DESCRIPTORS_KEPT",
    "CoalescingTransport",
    "HttpProtocol",
    "ResponseCycle",
    "http_protocol",
    "within_descriptor_limit",
]

log = logging.getLogger("frontdesk.server")

# Descriptors a worker keeps for everything but its clients: the listening socket, database connections (a pool of
# up to 30 on PostgreSQL; a database, log and shared-memory file per SQLite connection), outgoing HTTPS, logs.
DESCRIPTORS_KEPT = 64


def _plain(status: bytes, text: bytes, *extra: bytes) -> bytes:
    head = [b"HTTP/1.1 " + status, b"content-type: text/plain; charset=utf-8", *extra, b"connection: close"]
    return b"\r\n".join([*head, b"content-length: " + str(len(text)).encode(), b"", text])


_TIMEOUT = _plain(b"408 Request Timeout", b"Request Timeout")  # RFC 9110 §15.5.9, with "close" as it asks
_BUSY = _plain(b"503 Service Unavailable", b"Service Unavailable", b"retry-after: 1")


def within_descriptor_limit(limits: ServerLimits) -> ServerLimits:
    """``limits`` with ``max_connections`` lowered, if need be, to what the descriptor limit leaves: at the limit a
    worker cannot accept at all, nor open its database, and new clients wait unanswered."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or limits.max_connections <= soft - DESCRIPTORS_KEPT:
        return limits
    fitted = max(1, soft - DESCRIPTORS_KEPT)
    log.warning(
        "server.max_connections %d does not fit the limit of %d open files; using %d (raise `ulimit -n`)",
        limits.max_connections,
        soft,
        fitted,
    )
    return replace(limits, max_connections=fitted)


def http_protocol(limits: ServerLimits) -> type[asyncio.Protocol]:
    """The protocol class for ``uvicorn.run(http=...)``, bound to ``limits``. A partial, not a class made here:
    ``--workers N`` pickles uvicorn's config into each worker, and a partial of a module-level class pickles."""
    return cast(type[asyncio.Protocol], functools.partial(HttpProtocol, limits=limits))


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

    def is_closing(self) -> bool:  # asked after every response: spelled out rather than found by __getattr__
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        # Everything else (reading, flow control, extra info, abort) is the transport's own.
        return getattr(self._transport, name)


_LINES: dict[tuple[bytes, bytes], tuple[bytes, int]] = {}  # (name, value) -> its header line, its content-length
_LINES_KEPT = 2048  # past this many distinct headers the memo starts again
# The headers remembered: those whose values repeat from response to response. A Location (which carries codes), a
# Set-Cookie (sessions) or anything else is checked every time and never kept in the process.
_REMEMBERED = frozenset(
    {
        b"access-control-allow-credentials", b"access-control-allow-headers", b"access-control-allow-methods",
        b"access-control-allow-origin", b"access-control-expose-headers", b"access-control-max-age",
        b"cache-control", b"content-length", b"content-security-policy", b"content-type",
        b"cross-origin-opener-policy", b"date", b"pragma", b"referrer-policy", b"retry-after", b"vary",
        b"x-content-type-options", b"x-frame-options",
    }
)  # fmt: skip


def _header_line(name: bytes, value: bytes) -> tuple[bytes, int] | None:
    """The line uvicorn writes for a response header, and the length it declares (-1 unless a Content-Length), once
    checked as uvicorn checks it; None for what only uvicorn's own ``send`` handles (an invalid name or value, which
    it refuses, ``transfer-encoding`` and ``connection``, which change the response's framing)."""
    if HEADER_RE.search(name) or HEADER_VALUE_RE.search(value):
        return None
    name = name.lower()
    if name in (b"transfer-encoding", b"connection"):
        return None
    length = -1
    if name == b"content-length":
        try:
            length = int(value.decode())
        except ValueError:
            return None
    return name + b": " + value + b"\r\n", length


class ResponseCycle(RequestResponseCycle):
    """uvicorn's request-response cycle, with the header block of a response built from lines checked once per
    process: uvicorn matches two regular expressions against every header of every response and lower-cases its
    name, about 0.3 µs a header, and a token response has ten. Only headers whose values repeat are remembered
    (``_REMEMBERED``); the rest are checked as uvicorn checks them. Everything else is uvicorn's own."""

    async def send(self, message: Any) -> None:
        if (
            message["type"] != "http.response.start"
            or self.response_started
            or self.disconnected
            or self.flow.write_paused
            or self.access_log
        ):
            await super().send(message)
            return
        status = message["status"]
        content = [STATUS_LINE[status]]
        length = -1
        for pair in (*self.default_headers, *message.get("headers", ())):
            known = _LINES.get(pair) if type(pair) is tuple else None
            if known is None:
                # Not remembered: checked now, or left to uvicorn (a header given as a list is uvicorn's too).
                known = _header_line(*pair) if type(pair) is tuple else None
                if known is None:
                    await super().send(message)
                    return
                if pair[0] in _REMEMBERED:  # as sent: every frontdesk response names its headers in lower case
                    if len(_LINES) >= _LINES_KEPT:
                        _LINES.clear()
                    _LINES[pair] = known
            content.append(known[0])
            if known[1] >= 0 and length < 0:
                length = known[1]
        self.response_started = True
        self.waiting_for_100_continue = False
        if length >= 0:
            self.expected_content_length = length
            self.chunked_encoding = False
        if not self.keep_alive:
            content.append(b"connection: close\r\n")
        if length < 0 and self.scope["method"] != "HEAD" and status not in (204, 304):
            self.chunked_encoding = True
            content.append(b"transfer-encoding: chunked\r\n")
        content.append(b"\r\n")
        self.transport.write(b"".join(content))


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a ``CoalescingTransport``, with read deadlines and a connection cap: pass as
    ``uvicorn.run(..., http=http_protocol(limits))`` (or ``http=HttpProtocol`` for the default limits)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        limits: ServerLimits | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # The access line is frontdesk's own (asgi.py). uvicorn decides on its own from whether its access logger
        # has handlers, and in a worker of --workers N it has: frontdesk's logging (logs.py) propagates it to the
        # root after uvicorn emptied it, and each request got two lines.
        self.access_log = False
        self.limits = limits or ServerLimits()
        self._refused = False
        # What the connection waits for from the client, and until when: a request's headers or body, or (idle) the
        # next request after a response; None while the server has the turn.
        self._reading: Literal["headers", "body", "idle"] | None = None
        self._deadline = 0.0
        self._read_timer: asyncio.TimerHandle | None = None
        self._partial = False  # some bytes of a request whose header block is not complete

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if len(self.connections) >= self.limits.max_connections:
            self._refuse(cast(asyncio.Transport, transport))
            return
        # The proxy stands in for the transport wherever uvicorn uses it (it delegates all but writing).
        coalescing = CoalescingTransport(cast(asyncio.Transport, transport), self.loop)
        super().connection_made(cast(asyncio.Transport, coalescing))
        self._expect("headers", self.limits.header_timeout)  # a client that connects and says nothing

    def _refuse(self, transport: asyncio.Transport) -> None:
        self._refused = True
        transport.write(_BUSY)
        transport.close()
        log.warning("connection refused: %d open, server.max_connections reached", len(self.connections))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        self._stop_reading()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._partial = True
        if self._reading is None or self._reading == "idle":  # on a new connection the clock already runs
            self._expect("headers", self.limits.header_timeout)

    def on_headers_complete(self) -> None:
        self._partial = False
        super().on_headers_complete()
        self._expect("body", self.limits.body_timeout)

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        # uvicorn builds each cycle inside on_headers_complete; making it a ResponseCycle here, before its task first
        # runs, spares copying that method. The subclass adds no state, only its own send.
        cycle.__class__ = ResponseCycle
        super()._start_asgi_task(cycle, app)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # The timer stays armed: cancelling it here and arming a new one at the next request's first byte cost two
        # timer operations a request, on a keep-alive connection that sends one request after another. When it
        # fires with nothing to read it lapses; set for an earlier request, it sets itself to the new deadline.
        self._reading = None
        if self.cycle is not None and self.cycle.response_complete and not self.transport.is_closing():
            self._expect("idle", self.limits.keepalive_timeout)  # answered before its body had all arrived

    def on_response_complete(self) -> None:
        # uvicorn's, but for the keep-alive timeout: uvicorn arms a timer of its own here and cancels it at the next
        # request's first bytes, two timer operations a request (2.8 µs together); here the read timer, armed
        # already, keeps that deadline too. A request whose body is still arriving keeps its body deadline, and the
        # connection goes idle once the body is in (on_message_complete).
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        elif self._reading is None:
            self._expect("idle", self.limits.keepalive_timeout)

    def _expect(self, what: Literal["headers", "body", "idle"], seconds: float) -> None:
        # One timer, armed at a request's first byte unless it already is, moved only if the new deadline is nearer.
        # A timer that fires early (the deadline lies beyond it) sets itself again.
        self._reading = what
        self._deadline = self.loop.time() + seconds
        timer = self._read_timer
        if timer is None or timer.when() > self._deadline:
            if timer is not None:
                timer.cancel()
            self._read_timer = self.loop.call_at(self._deadline, self._read_timeout)

    def _stop_reading(self) -> None:
        self._reading = None
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _waiting_on_client(self) -> bool:
        if self._reading == "body":
            return not self.flow.read_paused  # paused: the app has not taken what came, or a request queues
        return self.cycle is None or self.cycle.response_complete  # else the next request waits for this answer

    def _read_timeout(self) -> None:
        self._read_timer = None
        what = self._reading
        if what is None or self.transport.is_closing():
            return
        if not self._waiting_on_client():
            self._expect(what, self.limits.body_timeout if what == "body" else self.limits.header_timeout)
            return
        if self.loop.time() < self._deadline:
            self._read_timer = self.loop.call_at(self._deadline, self._read_timeout)
            return
        self._stop_reading()
        if what == "idle":  # the keep-alive timeout: no request was started, none is owed an answer
            self.transport.close()
            return
        cycle = self.cycle
        if what == "body" and cycle is not None:
            if not cycle.response_started:
                self.transport.write(_TIMEOUT)
            # The app's receive() answers http.disconnect from now on; anything it sends is dropped.
            cycle.keep_alive = False
            cycle.disconnected = True
            cycle.message_event.set()
        elif self._partial:
            self.transport.write(_TIMEOUT)
        log.debug("closed a connection: request %s not complete in time", what, extra={"client": self.client})
        self.transport.close()
