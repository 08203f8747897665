"""The ASGI application as ``frontdesk serve`` runs it; ``app`` is the factory each worker of ``--workers N`` calls.

This is the composition root (DESIGN §2): :func:`open_frontdesk` opens the core and attaches the token vault to it,
for the workers, the CLI and the tests alike.

Migrations and key creation already ran in the parent process, so workers start without racing on them. Around
the Starlette app (web/app.py) sit two things that only a served process needs:

- the audit writer (storage/audit.py) runs from start-up to shutdown, and writes every queued event once the
  last request has been answered; on SQLite, so does the WAL checkpointer (storage/wal.py);
- the access line of every request (``logs.access_line``, uvicorn's own line, written here so that it costs one
  rendered line and carries the request's audit event; ``access_log = false`` turns it off);
- the protocol endpoints that carry the load (token, introspection, JWKS, discovery; marked ``HotRoute`` in
  web/app.py's route table) are called straight from here rather than through the router and middleware stack:
  the same endpoint functions, the same exception handlers, the same security headers, and for those the table
  also marks ``cross_origin`` the same CORS headers (web/cors.py), less a dozen layers of wrapping per request
  (see BENCHMARKS.md). Their preflights (``OPTIONS``) take the router.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import logs, metrics
from .config import Settings, load_settings
from .core import Frontdesk, open_core
from .logs import configure_logging
from .oauth import memory
from .storage import audit, wal
from .vault.service import open_vault
from .web import cors, create_app
from .web.app import Endpoint, HotRoute
from .web.demo import DemoClient
from .web.http import JSONAnswer, Prepared, SecurityHeaders, plain_headers, with_page_headers
from .web.token import FRONTDESK

__all__ = ["app", "open_frontdesk", "served"]

log = logging.getLogger("frontdesk")


def _direct_routes(app: Starlette) -> dict[tuple[str, str], Endpoint]:
    """The routes marked hot in the route table, for each method they declare that the router would send to them,
    and only while the stack around them is the one ``create_app`` builds: otherwise every request takes the full
    stack."""
    if [m.cls for m in app.user_middleware] != [SecurityHeaders]:  # type: ignore[comparison-overlap]
        return {}
    if getattr(app, "max_body_size", None) is not None:
        return {}
    direct: dict[tuple[str, str], Endpoint] = {}
    for route in app.routes:
        if not isinstance(route, HotRoute):
            continue
        for method in route.hot_methods:
            if _routed_to(app.routes, method, route.path) is route:
                direct[(method, route.path)] = route.hot_endpoint
    return direct


def _cross_origin(app: Starlette, direct: dict[tuple[str, str], Endpoint]) -> frozenset[str]:
    """The paths of the direct routes the table marks ``cross_origin``: the direct path adds the CORS headers their
    wrapper would (it bypasses the route's app, and so the wrapper)."""
    marked = {route.path for route in app.routes if isinstance(route, HotRoute) and cors.cross_origin_of(route)}
    return frozenset(path for _, path in direct if path in marked)


def _routed_to(routes: list[BaseRoute], method: str, path: str) -> BaseRoute | None:
    """The route Starlette's router picks for this method and path: the first that matches both (an earlier route
    for the same path wins, and a later duplicate never runs)."""
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    return next((route for route in routes if route.matches(scope)[0] is Match.FULL), None)


class Served:
    """The Starlette app plus the audit writer's lifetime and the direct calls to the hot endpoints."""

    def __init__(self, app: Starlette, fd: Frontdesk) -> None:
        self.app = app
        self.fd = fd
        self.direct = _direct_routes(app)
        self.cross_origin = _cross_origin(app, self.direct)
        self.handlers = app.exception_handlers
        self.access_log = fd.settings.access_log
        # What the direct path appends to a plain JSON answer's headers: the security headers, after the CORS
        # headers where the route is cross-origin (web/cors.py), exactly as with_cors and with_page_headers add them.
        plain = plain_headers()
        self.plain_tail = with_page_headers(plain)[len(plain) :]
        self.plain_cors_tail = with_page_headers(cors.with_cors(plain))[len(plain) :]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self.app(scope, receive, self._lifespan_send(send))
                return
            await self.app(scope, receive, send)
            return
        endpoint = self.direct.get((scope["method"], scope["path"]))
        if endpoint is not None and scope.get("root_path"):
            endpoint = None
        if not (self.access_log and logs.ACCESS.isEnabledFor(logging.INFO)):
            if endpoint is not None:
                await self._direct(endpoint, scope, receive, send, None)
            else:
                await self.app(scope, receive, send)
            return
        with logs.RequestLines() as pending:
            try:
                if endpoint is not None:
                    await self._direct(endpoint, scope, receive, send, pending)
                else:
                    await self.app(scope, receive, _noting_status(send, pending))
            finally:
                if pending.status:  # as uvicorn: no line for a request that got no response from the app
                    logs.access_line(scope, pending.status, pending)

    async def _direct(
        self, endpoint: Endpoint, scope: Scope, receive: Receive, send: Send, pending: logs.RequestLines | None
    ) -> None:
        # What Starlette's stack does for these routes, in its order: ServerErrorMiddleware (a 500 goes out
        # without the security headers, then the error is raised on to the server), SecurityHeaders, then
        # ExceptionMiddleware with the app's handlers by exception class. ``pending``: the access line's, which
        # learns the status as the response starts.
        scope["app"] = self.app
        scope[FRONTDESK] = self.fd
        cross_origin = scope["path"] in self.cross_origin
        if cross_origin:
            cors.mark(scope)  # for the server-error handler, as the route's wrapper marks it on the router's path
        request = Request(scope, receive)
        started = False
        try:
            try:
                response = await endpoint(request)
            except Exception as exc:
                handler = next(
                    (self.handlers[c] for c in type(exc).__mro__ if c is not Exception and c in self.handlers), None
                )
                if handler is None:
                    raise
                handled = handler(request, exc)
                response = await handled if inspect.isawaitable(handled) else handled
            if type(response) is JSONAnswer and response.plain and response.background is None:
                # The headers added below, computed once for the headers such an answer has (web/http.py).
                headers = response.raw_headers + (self.plain_cors_tail if cross_origin else self.plain_tail)
            elif type(response) is Prepared:  # built once with what it is sent with (web/http.py)
                headers = response.sent_headers(cross_origin)
            else:
                if cross_origin:  # errors too: a browser-based client must be able to read the OAuth error
                    response.raw_headers = cors.with_cors(response.raw_headers)
                if type(response) not in (Response, JSONAnswer) or response.background is not None:
                    await SecurityHeaders(response)(scope, receive, _noting_status(send, pending))
                    return
                headers = with_page_headers(response.raw_headers)
            # A plain response, as every hot endpoint answers: its two messages written here, with the headers
            # SecurityHeaders would add, rather than through two wrapped send callables.
            started = True
            if pending is not None:
                pending.status = response.status_code
            await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
            await send({"type": "http.response.body", "body": response.body})
        except Exception as exc:
            server_error = self.handlers.get(Exception) or self.handlers.get(500)
            if server_error is None:
                raise
            if not started:
                answer = server_error(request, exc)
                answer = await answer if inspect.isawaitable(answer) else answer
                await answer(scope, receive, _noting_status(send, pending))
            raise

    def _lifespan_send(self, send: Send) -> Send:
        async def send_and_batch(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                # On SQLite the loop writes the audit batches, as it writes the token paths (storage/audit.py).
                sqlite = self.fd.engine.dialect.name == "sqlite"
                audit.start_writer(self.fd.engine, asyncio.get_running_loop() if sqlite else None)
                wal.start(self.fd.engine)
                memory.start(self.fd)  # revocations, limits and resources kept, invalidated across processes
                self.fd.keys.read()  # the ring's first read, before requests can hold every connection (key_ring.py)
                # Everything loaded so far (modules, SQLAlchemy's tables, templates) lives as long as the process:
                # out of the collector's way, so that full collections stop walking it (BENCHMARKS.md).
                gc.collect()
                gc.freeze()
            elif message["type"].startswith("lifespan.shutdown."):
                try:
                    if self.fd.engine.dialect.name == "sqlite":
                        audit.stop_writer(self.fd.engine)  # on the loop, where its batches are written
                    else:
                        await run_in_threadpool(audit.stop_writer, self.fd.engine)
                except Exception:
                    log.exception("audit events could not be written at shutdown")
                memory.stop(self.fd)
                try:
                    wal.stop(self.fd.engine)
                except Exception:
                    log.exception("the last WAL checkpoint failed")
                for handler in logging.root.handlers:
                    handler.flush()
            await send(message)

        return send_and_batch


def _noting_status(send: Send, pending: logs.RequestLines | None) -> Send:
    """``send``, noting the status of the response as it starts for the request's access line (if it has one)."""
    if pending is None:
        return send

    async def send_status(message: Message) -> None:
        if message["type"] == "http.response.start":
            pending.status = message["status"]
        await send(message)

    return send_status


def open_frontdesk(settings: Settings, *, run_migrations: bool = True, ensure_keys: bool = True) -> Frontdesk:
    """frontdesk as every process runs it (each worker, the CLI, the tests): the core, and the token vault opened on
    it and attached (DESIGN §2: the vault builds on the core, and neither imports the other). ``close()`` on the
    result closes both."""
    fd = open_core(settings, run_migrations=run_migrations, ensure_keys=ensure_keys)
    try:
        fd.vault = open_vault(fd)
    except BaseException:  # refusing to start (no vault key): leave no connection behind
        fd.close()
        raise
    return fd


class MeasuredServed(Served):
    """``Served`` with each request counted and timed (metrics.py): what ``served`` builds when ``[metrics]`` is on,
    so that with metrics off a request does not pay even a branch for them."""

    def __init__(self, app: Starlette, fd: Frontdesk) -> None:
        super().__init__(app, fd)
        self.meter = metrics.RequestMeter(self.direct)
        metrics.watch(fd)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.meter(super().__call__, scope, receive, send)


def served(fd: Frontdesk, demo: DemoClient | None = None) -> Served:
    """The app as ``frontdesk serve`` runs it."""
    return (MeasuredServed if fd.settings.metrics.enabled else Served)(create_app(fd, demo), fd)


def app() -> ASGIApp:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return served(open_frontdesk(settings, run_migrations=False, ensure_keys=False))
