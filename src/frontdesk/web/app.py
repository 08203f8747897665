"""The ASGI application: routes, the error handlers that keep stack traces off the wire, security headers.

The route table marks the protocol endpoints that carry the load as hot (``HotRoute``); ``frontdesk serve`` calls
those straight from asgi.py, and reads which they are from this table alone."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path

import anyio
import httpx
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..admin import alerts
from ..core import Frontdesk
from ..errors import OAuthError, ServerError, TemporarilyUnavailable
from ..oauth.housekeeping import purge
from ..upstream import ProviderKeys
from ..vault.pool import Connections, ProviderClient, proxied_by_environment
from ..vault.service import vault_of
from . import (
    account,
    account_connections,
    account_security,
    admin_api,
    admin_console,
    authorize,
    ciba,
    demo,
    device,
    discovery,
    email_pages,
    health,
    logout,
    mcp,
    register,
    resource,
    signin,
    signup,
    token,
    upstream,
    vault,
    vault_connect,
)
from .cors import cross_origin, with_cors
from .cors import marked as cross_origin_marked
from .http import SecurityHeaders, error_response

__all__ = ["Endpoint", "HotRoute", "create_app"]

log = logging.getLogger("frontdesk.web")


async def _oauth_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OAuthError)
    if isinstance(exc, TemporarilyUnavailable):
        log.warning("database unavailable", extra={"path": request.scope["path"], "detail": exc.detail})
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return Response(exc.detail, status_code=exc.status_code, headers=exc.headers, media_type="text/plain")


async def _client_gone(request: Request, exc: Exception) -> Response:
    # The client hung up mid-body: nobody is left to answer, and it is no server fault worth an error log.
    log.info("client disconnected", extra={"path": request.scope["path"]})
    return Response(status_code=400)


async def _server_error(request: Request, exc: Exception) -> Response:
    # Anything that is not a protocol error: logged with its trace here, a generic server_error on the wire.
    log.exception("unhandled error", extra={"path": request.scope["path"]})
    response = error_response(ServerError("the server could not complete the request"))
    if cross_origin_marked(request.scope):  # answered outside the route: its CORS wrapper never sees this one
        response.raw_headers = with_cors(response.raw_headers)
    return response


Endpoint = Callable[[Request], Awaitable[Response]]


class HotRoute(Route):
    """A protocol endpoint that carries the load (token, introspection, JWKS, discovery): ``frontdesk serve`` calls
    it straight from asgi.py rather than through the router and middleware stack, for exactly the methods declared
    here (not the HEAD Starlette adds to a GET). Its path is fixed, since the direct path looks requests up by
    method and path alone, and its endpoint answers a plain response (BENCHMARKS.md)."""

    def __init__(self, path: str, endpoint: Endpoint, *, methods: list[str]) -> None:
        if "{" in path:
            raise ValueError(f"a hot route needs a fixed path, not {path!r}")
        super().__init__(path, endpoint, methods=methods)
        self.hot_endpoint = endpoint  # as declared: Route.endpoint is typed Callable[..., Any]
        self.hot_methods = tuple(methods)


PURGE_EVERY = 600.0
PURGE_BEHIND = 1.0
KEEPALIVE_EVERY = 900.0


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    """A bounded purge of expired artefacts every ten minutes, for as long as the server runs."""
    fd: Frontdesk = app.state.fd

    async def purge_forever() -> None:
        delay = PURGE_EVERY
        while True:
            await anyio.sleep(delay)
            delay = PURGE_EVERY
            try:
                purged = await run_in_threadpool(purge, fd)
                log.info("purged expired artefacts", extra={"deleted": purged.deleted})
                if purged.behind:
                    delay = PURGE_BEHIND  # more expired rows than one pass deletes: keep going, a pass at a time
            except Exception:  # the purge must never take the server down; the next round retries
                log.exception("purge failed")

    async def keep_connections_alive() -> None:
        # Providers such as Google revoke refresh tokens left unused for months: refresh idle vault connections.
        while True:
            await anyio.sleep(KEEPALIVE_EVERY)
            if fd.vault is None:
                continue
            try:
                refreshed = await run_in_threadpool(vault_of(fd).keepalive)
                if refreshed:
                    log.info("kept vault connections alive", extra={"refreshed": refreshed})
            except Exception:  # like the purge: never fatal, the next round retries
                log.exception("vault keep-alive failed")

    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(purge_forever)
            tasks.start_soon(keep_connections_alive)
            tasks.start_soon(logout.deliver_forever, app)  # Back-Channel Logout 1.0: the outbox
            tasks.start_soon(mcp.serve_forever, app)  # the MCP SDK's session manager, for /mcp
            tasks.start_soon(alerts.watch, fd)  # alerts from the audit trail and their webhooks (admin/alerts.py)
            yield
            tasks.cancel_scope.cancel()
    finally:
        await app.state.vault_http.aclose()  # and with it the proxy's own connections (vault/pool.py)


def _vault_http() -> ProviderClient:
    """The vault's client to providers, and the proxy's own connections beside it (vault/pool.py), from one set of
    settings: its timeouts, its limits, one TLS context (httpx's own, verification on), and no redirect followed
    (the credential stays put). It is shared by every person's calls, so it keeps no cookie: one person's provider
    session must never ride along with another's call (the proxy also sends without the jar)."""
    timeout, tls = httpx.Timeout(30.0, connect=5.0), httpx.create_ssl_context()
    # httpx's documented defaults for a client (a bare httpx.Limits() would bound nothing), spelled out so that
    # the client and the proxy's connections read the same numbers.
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)
    client = ProviderClient(
        timeout=timeout,
        limits=limits,
        verify=tls,
        follow_redirects=False,
        cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])),
    )
    if not proxied_by_environment():  # a proxy from the environment: its calls go through httpx, which honours it
        client.connections = Connections(tls, limits, timeout, client.headers)
    return client


def create_app(fd: Frontdesk, demo_client: demo.DemoClient | None = None) -> Starlette:
    mcp_endpoint = mcp.build(fd)  # {issuer}/mcp, the vault's MCP server (web/mcp.py); None when not served here
    routes = [
        # cross_origin(...): CORS for browser-based clients (web/cors.py); /authorize and the pages stay navigations.
        cross_origin(HotRoute("/.well-known/openid-configuration", discovery.openid_configuration, methods=["GET"])),
        cross_origin(
            HotRoute("/.well-known/oauth-authorization-server", discovery.oauth_authorization_server, methods=["GET"])
        ),
        cross_origin(HotRoute("/jwks", discovery.jwks, methods=["GET"])),
        Route("/authorize", authorize.authorize, methods=["GET", "POST"]),
        Route("/interaction/{ix}", authorize.resume, methods=["GET"]),
        Route("/interaction/{ix}/login", authorize.login, methods=["GET", "POST"]),
        Route("/interaction/{ix}/consent", authorize.consent, methods=["GET", "POST"]),
        Route("/interaction/{ix}/second-factor", signin.second_factor, methods=["GET", "POST"]),
        Route("/interaction/{ix}/passkey", signin.passkey, methods=["POST"]),
        Route("/interaction/{ix}/passkey/options", signin.passkey_options, methods=["POST"]),
        Route("/account", account.profile, methods=["GET"]),
        Route("/account/apps", account.apps, methods=["GET"]),
        Route("/account/apps/revoke", account.revoke_app, methods=["POST"]),
        Route("/account/connections", account_connections.connections, methods=["GET"]),
        Route("/account/connections/disconnect", account_connections.disconnect, methods=["POST"]),
        Route("/account/approvals", ciba.approvals, methods=["GET"]),
        Route("/account/approvals/decide", ciba.decide, methods=["POST"]),
        Route("/account/sessions", account.sessions, methods=["GET"]),
        Route("/account/sessions/sign-out", account.sign_out, methods=["POST"]),
        Route("/account/sessions/sign-out-everywhere", account.sign_out_everywhere, methods=["POST"]),
        Route("/account/activity", account.activity, methods=["GET"]),
        Route("/account/security", account_security.security, methods=["GET"]),
        Route("/account/password", account_security.change_password, methods=["POST"]),
        Route("/account/passkeys", account_security.add_passkey, methods=["POST"]),
        Route("/account/passkeys/options", account_security.passkey_options, methods=["POST"]),
        Route("/account/passkeys/rename", account_security.rename_passkey_form, methods=["POST"]),
        Route("/account/passkeys/remove", account_security.remove_passkey_form, methods=["POST"]),
        Route("/account/second-factor", account_security.enrol_second_factor, methods=["GET", "POST"]),
        Route("/account/second-factor/remove", account_security.turn_off_second_factor, methods=["POST"]),
        Route("/account/recovery-codes", account_security.recovery_codes, methods=["POST"]),
        Route("/logout", logout.end_session, methods=["GET", "POST"]),
        Route("/logout/confirm", logout.confirm, methods=["POST"]),
        Route("/interaction/{ix}/upstream", upstream.finish, methods=["GET", "POST"]),
        Route("/interaction/{ix}/upstream/{name}", upstream.start, methods=["POST"]),
        Route("/upstream/{name}/callback", upstream.callback, methods=["GET"]),
        cross_origin(HotRoute("/token", token.token, methods=["POST"])),
        # Not cross-origin: introspection is for resource servers calling from a server (RFC 7662 §2.1; web/cors.py).
        HotRoute("/introspect", resource.introspect, methods=["POST"]),
        cross_origin(Route("/revoke", resource.revocation, methods=["POST"])),
        # OpenID Connect Core §5.3.1: the UserInfo endpoint SHOULD support CORS, for JavaScript clients.
        cross_origin(Route("/userinfo", resource.userinfo, methods=["GET", "POST"])),
        # RFC 7591 §3 and RFC 7592 §2; no endpoint at all when registration is closed.
        *(
            [
                cross_origin(Route("/register", register.registration, methods=["POST"])),
                cross_origin(
                    Route("/register/{client_id}", register.client_configuration, methods=["GET", "PUT", "DELETE"])
                ),
            ]
            if fd.settings.registration.mode != "closed"
            else []
        ),
        Route("/device_authorization", device.device_authorization, methods=["POST"]),
        Route("/device", device.verification, methods=["GET", "POST"]),
        Route("/device/decide", device.verification, methods=["POST"]),
        # OpenID Connect CIBA Core 1.0 §7: clients call it from their servers, so no CORS.
        Route("/bc-authorize", ciba.backchannel_authentication, methods=["POST"]),
        Route("/vault/connect-sessions", vault.connect_sessions, methods=["POST"]),
        Route("/vault/connections", vault.connections, methods=["GET"]),
        Route("/vault/connections/{connection_id}", vault.connection, methods=["GET", "DELETE"]),
        Route("/vault/connections/{connection_id}/credentials", vault.credentials, methods=["GET"]),
        Route("/vault/check", vault.check, methods=["POST"]),
        Route(
            "/vault/proxy/{connection_id}/{path:path}",
            vault.proxy,
            methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
        ),
        Route("/vault/connect", vault_connect.connect_resumed, methods=["GET"]),
        Route("/vault/connect/{token}", vault_connect.connect, methods=["GET"]),
        Route("/vault/connect/{token}", vault_connect.connect_confirmed, methods=["POST"]),
        Route("/vault/callback", vault_connect.callback, methods=["GET"]),
        *([Route("/demo/callback", demo.callback, methods=["GET"])] if demo_client else []),
        # Probes for load balancers and orchestrators (web/health.py); metrics here only when asked: [metrics].
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
        *([Route("/metrics", health.metrics_page, methods=["GET"])] if fd.settings.metrics.public else []),
        *(mcp_endpoint.routes if mcp_endpoint else []),
        *admin_api.routes(fd),  # the admin API under /admin/api/v1 (web/admin_api.py)
        *admin_console.routes(fd),  # the admin console at /admin (web/admin_console.py)
        *email_pages.routes(fd),  # password reset and address confirmation by email (web/email_pages.py)
        *signup.routes(fd),  # self sign-up, when [signup] enabled (web/signup.py)
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
    app.state.vault_http = _vault_http()
    app.state.demo = demo_client
    app.state.mcp = mcp_endpoint
    # Upstream providers' key sets, shared by this process's sign-ins (OpenID Connect Core 1.0 §10.1.1).
    app.state.upstream_keys = ProviderKeys()
    return app
