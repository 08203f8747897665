"""The ASGI application: routes, the error handlers that keep stack traces off the wire, security headers."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..core import Frontdesk
from ..errors import OAuthError, ServerError, TemporarilyUnavailable
from ..storage.db import now
from ..storage.purge import purge_expired
from . import authorize, demo, device, discovery, resource, token
from .http import SecurityHeaders, error_response

__all__ = ["create_app"]

log = logging.getLogger("frontdesk.web")


async def _oauth_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OAuthError)
    if isinstance(exc, TemporarilyUnavailable):
        log.warning("database unavailable", extra={"path": request.url.path, "detail": exc.detail})
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return Response(exc.detail, status_code=exc.status_code, headers=exc.headers, media_type="text/plain")


async def _client_gone(request: Request, exc: Exception) -> Response:
    # The client hung up mid-body: nobody is left to answer, and it is no server fault worth an error log.
    log.info("client disconnected", extra={"path": request.url.path})
    return Response(status_code=400)


async def _server_error(request: Request, exc: Exception) -> Response:
    # Anything that is not a protocol error: logged with its trace here, a generic server_error on the wire.
    log.exception("unhandled error", extra={"path": request.url.path})
    return error_response(ServerError("the server could not complete the request"))


PURGE_EVERY = 600.0


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    """A bounded purge of expired artefacts every ten minutes, for as long as the server runs."""
    fd: Frontdesk = app.state.fd

    async def purge_forever() -> None:
        while True:
            await anyio.sleep(PURGE_EVERY)
            try:
                counts = await run_in_threadpool(purge_expired, fd.engine, now())
                log.info("purged expired artefacts", extra={"deleted": counts})
            except Exception:  # the purge must never take the server down; the next round retries
                log.exception("purge failed")

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(purge_forever)
        yield
        tasks.cancel_scope.cancel()


def create_app(fd: Frontdesk, demo_client: demo.DemoClient | None = None) -> Starlette:
    routes = [
        Route("/.well-known/openid-configuration", discovery.openid_configuration, methods=["GET"]),
        Route("/.well-known/oauth-authorization-server", discovery.oauth_authorization_server, methods=["GET"]),
        Route("/jwks", discovery.jwks, methods=["GET"]),
        Route("/authorize", authorize.authorize, methods=["GET", "POST"]),
        Route("/interaction/{ix}", authorize.resume, methods=["GET"]),
        Route("/interaction/{ix}/login", authorize.login, methods=["GET", "POST"]),
        Route("/interaction/{ix}/consent", authorize.consent, methods=["GET", "POST"]),
        Route("/token", token.token, methods=["POST"]),
        Route("/introspect", resource.introspect, methods=["POST"]),
        Route("/revoke", resource.revocation, methods=["POST"]),
        Route("/userinfo", resource.userinfo, methods=["GET", "POST"]),
        Route("/device_authorization", device.device_authorization, methods=["POST"]),
        Route("/device", device.verification, methods=["GET", "POST"]),
        Route("/device/decide", device.verification, methods=["POST"]),
        *([Route("/demo/callback", demo.callback, methods=["GET"])] if demo_client else []),
        Mount("/static", StaticFiles(directory=Path(__file__).with_name("static")), name="static"),
    ]
    app = Starlette(
        routes=routes,
        lifespan=_lifespan,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={
            OAuthError: _oauth_error,
            HTTPException: _http_error,
            ClientDisconnect: _client_gone,
            Exception: _server_error,
        },
    )
    # Starlette would answer "/token/" with a 307 to "/token" built from the Host header: a body-preserving
    # redirect of a POST that may carry credentials (RFC 9700 §4.12), to a host nobody vouched for (§4.13).
    app.router.redirect_slashes = False
    app.state.fd = fd
    app.state.demo = demo_client
    return app
