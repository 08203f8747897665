"""HTTP plumbing shared by the endpoints: parameter reading with the spec's errors, JSON and error responses,
and the headers every response carries."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Engine
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import InvalidRequest, OAuthError, PayloadTooLarge, RateLimited, TemporarilyUnavailable
from ..oauth.writes import in_thread
from ..protocol.forms import Params, parse_form, parse_query
from ..wire import dumps, loads
from .cors import with_cors

__all__ = [
    "JSONAnswer",
    "Prepared",
    "SecurityHeaders",
    "client_ip",
    "error_response",
    "header",
    "json_response",
    "plain_headers",
    "read_body",
    "read_form",
    "read_json",
    "read_params",
    "run_sync",
    "with_page_headers",
]

log = logging.getLogger("frontdesk.http")
P = ParamSpec("P")
T = TypeVar("T")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"


_NO_STORE_RAW = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in NO_STORE.items()]
_JSON_TYPE = (b"content-type", b"application/json")


class JSONAnswer(Response):
    """A JSON body and its headers, written out: what ``Response`` would set, less its general set-up, which cost
    as much as encoding the body on the token paths (BENCHMARKS.md). ``plain``: its headers are exactly those of
    ``plain_headers`` (no-store and no other), so the direct path may append the rest of them precomputed."""

    media_type = "application/json"

    def __init__(self, body: bytes, status: int, headers: dict[str, str]) -> None:
        self.status_code = status
        self.background = None
        self.body = body
        self.plain = headers is NO_STORE
        if self.plain:
            self.raw_headers = [*_NO_STORE_RAW, (b"content-length", str(len(body)).encode()), _JSON_TYPE]
            return
        self.raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self.raw_headers += [(b"content-length", str(len(body)).encode()), _JSON_TYPE]


class Prepared(Response):
    """An answer that is the same, bytes and headers, for every request until what it shows changes (the JWKS, the
    discovery documents): built once and handed out again and again, never changed by whoever sends it. The direct
    path (asgi.py) sends ``sent_headers`` as they are, the security and CORS headers computed once with the
    answer, rather than building a ``Response`` and adding them per request: about half of a JWKS request's CPU in
    process (BENCHMARKS.md). Through Starlette's stack it is an ordinary response, whose additions are idempotent."""

    def __init__(self, body: bytes, media_type: str, headers: dict[str, str]) -> None:
        super().__init__(body, media_type=media_type, headers=headers)
        self._sent = {
            False: with_page_headers(self.raw_headers),
            True: with_page_headers(with_cors(self.raw_headers)),
        }

    def sent_headers(self, cross_origin: bool) -> list[tuple[bytes, bytes]]:
        return self._sent[cross_origin]


def plain_headers() -> list[tuple[bytes, bytes]]:
    """The headers of a plain :class:`JSONAnswer` (its content-length aside, which is of no concern to the headers
    added after it): what the direct path computes its additions for once."""
    return [*_NO_STORE_RAW, (b"content-length", b"0"), _JSON_TYPE]


def json_response(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """JSON with ``Cache-Control: no-store`` (RFC 6749 §5.1, OAuth 2.1 §3.2.3)."""
    return JSONAnswer(dumps(body), status, {**NO_STORE, **headers} if headers else NO_STORE)


def error_response(exc: OAuthError, headers: dict[str, str] | None = None) -> Response:
    if exc.detail:
        log.info("oauth error", extra={"error": exc.error, "detail": exc.detail})
    # RFC 9110 §10.2.3 / RFC 6585 §4: a 503 or 429 says when to try again, from every endpoint alike.
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after), **(headers or {})}
    elif isinstance(exc, TemporarilyUnavailable):
        headers = {"Retry-After": "5", **(headers or {})}
    return json_response(exc.body(), exc.status, headers)


def header(request: Request, name: bytes) -> str | None:
    """The request's first header ``name`` (in lower case), as ``request.headers.get`` reads it, from the scope:
    without building Starlette's ``Headers`` and its case-folding lookups, on the token paths."""
    for key, value in request.scope["headers"]:
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None


async def _body(request: Request, limit: int) -> bytes:
    declared = header(request, b"content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequest("malformed Content-Length")
        if int(declared) > limit:
            raise PayloadTooLarge("the request body is too large")
    # The ASGI messages, read here rather than through Starlette's ``Request.stream``: an async generator, which costs
    # every request three exceptions (a StopIteration for each chunk it hands over, a StopAsyncIteration at its end).
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect: the client left before its body was in
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge("the request body is too large")
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    request._body = body  # as Request.body() keeps it: read again (stream, body, form), the body is this
    return body


async def read_body(request: Request, limit: int) -> bytes:
    """A raw body of at most ``limit`` bytes (the vault proxy forwards it as it came)."""
    return await _body(request, limit)


async def read_form(request: Request, limit: int) -> Params:
    """A form-encoded POST body; anything else is ``invalid_request`` (RFC 6749 §3.2)."""
    if _media_type(request) != _FORM:
        raise InvalidRequest(f"the request body must be {_FORM}")
    return parse_form(await _body(request, limit))


def _media_type(request: Request) -> str:
    value = header(request, b"content-type") or ""
    if value == _FORM:  # as nearly every token request sends it
        return value
    return value.split(";", 1)[0].strip().lower()


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """An ``application/json`` body holding one object; anything else is ``invalid_request``.

    Strictly parsed (wire.loads: no lone surrogates, bounded nesting, valid UTF-8), and no string in it may carry a
    NUL: no endpoint takes one, PostgreSQL cannot store one in a text column, and the form parser refuses it too."""
    if _media_type(request) != _JSON:
        raise InvalidRequest(f"the request body must be {_JSON}")
    try:
        body = loads(await _body(request, limit))
    except ValueError:
        raise InvalidRequest("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    _refuse_nul(body)
    return body


def _refuse_nul(value: Any) -> None:
    # Iterative: the body may nest as deep as the parser allows, and this must not be the one to recurse.
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise InvalidRequest("the request body carries a NUL character")
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


async def read_params(request: Request, limit: int) -> Params:
    """GET query or POST form, as the authorization and UserInfo endpoints accept either (RFC 6749 §3.1)."""
    if request.method == "POST":
        return await read_form(request, limit)
    # The raw bytes, not request.url.query: that decodes them as UTF-8 and raises on anything else (a server may
    # pass bytes outside ASCII through). Percent-decoding is then strict UTF-8 in parse_query.
    try:
        query = request.scope.get("query_string", b"").decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("the query string is not valid UTF-8") from None
    return parse_query(query)


async def run_sync(engine: Engine, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """The blocking part of a hot endpoint that only reads the store (a failed client authentication aside).

    On SQLite such a read takes microseconds and never waits for a writer (WAL), so it runs here on the event loop:
    a trip to the thread pool would cost more than the work. Elsewhere a read is a network round trip, and goes to
    the thread pool, where a slow database holds up one request, not the server. (Writes: oauth/writes.py.)"""
    if engine.dialect.name == "sqlite":
        return fn(*args, **kwargs)
    return await in_thread(fn, *args, **kwargs)


def client_ip(request: Request) -> str | None:
    # Forwarded headers are not trusted: RFC 9700 §4.13 — only a configured proxy may set them.
    client = request.scope.get("client")
    return str(client[0]) if client else None


_PAGE_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
]


def with_page_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """A response's headers plus those of ``_PAGE_HEADERS`` it does not set itself."""
    names = {k.lower() for k, _ in headers}
    return headers + [h for h in _PAGE_HEADERS if h[0] not in names]


def _readable_target(scope: Scope) -> bool:
    """Whether the query string is UTF-8, as Starlette's ``request.url`` (and so every page, and the error handlers'
    logging) decodes it. A server may pass raw bytes through; RFC 9112 §3.2 and RFC 3986 §2 allow only ASCII."""
    try:
        scope.get("query_string", b"").decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class SecurityHeaders:
    """RFC 9700 §4.16 (framing) and §4.2.4 (Referer) on every response, pages and APIs alike; and a 400 for a
    request target no endpoint could read, before any of them tries."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_page_headers(list(message.get("headers", [])))
            await send(message)

        if not _readable_target(scope):
            # What the server itself answers to a malformed request line: plain text, no endpoint involved.
            refusal = Response("the query string is not valid UTF-8", 400, NO_STORE, media_type="text/plain")
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)
